import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { missedEvents, newerThan } from "./catchup.ts";

const obj = (name: string, rv: string) => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: { name, namespace: "n", resourceVersion: rv },
});
const list = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  namespace: "n",
  resourceVersion: "200",
};

describe("newerThan", () => {
  const cases: [string | undefined, string, boolean][] = [
    ["11", "10", true],
    ["10", "10", false],
    ["9", "10", false],
    ["100000000000000000001", "100000000000000000000", true],
    ["abc", "10", true],
    [undefined, "10", true],
    ["10", "x", true],
  ];
  for (const [rv, since, want] of cases)
    it(`${rv} after ${since}: ${want}`, () => assert.equal(newerThan(rv, since), want));
});

describe("missedEvents", () => {
  it("reports changes after the last delivered version, oldest first, and deletions of known objects", () => {
    const events = missedEvents(
      "100",
      new Set(["kept", "changed", "gone"]),
      [obj("kept", "90"), obj("changed", "150"), obj("new", "120")],
      list,
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.name, e.resourceVersion]),
      [
        ["ADDED", "new", "120"],
        ["MODIFIED", "changed", "150"],
        ["DELETED", "gone", "200"],
      ],
    );
    assert.equal(events[2]!.object.kind, "Workspace");
  });
  it("reports nothing when nothing changed", () =>
    assert.deepEqual(missedEvents("100", new Set(["a"]), [obj("a", "100")], list), []));
});
