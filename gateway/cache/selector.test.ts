import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkLabelSelector } from "../routes/validate.ts";
import { parseSelector } from "./selector.ts";

const objects: Record<string, Record<string, string> | undefined> = {
  none: undefined,
  empty: {},
  web: { app: "web", tier: "front" },
  db: { app: "db", tier: "back", "example.com/owner": "alice" },
  blank: { app: "" },
};

/** Which of `objects` the selector picks, by name. */
const picks = (selector: string) =>
  Object.entries(objects)
    .filter(([, labels]) => parseSelector(selector)(labels))
    .map(([name]) => name);

describe("parseSelector (Kubernetes label selector semantics)", () => {
  const cases: [string, string[]][] = [
    ["", ["none", "empty", "web", "db", "blank"]],
    ["app", ["web", "db", "blank"]],
    ["!app", ["none", "empty"]],
    ["app=web", ["web"]],
    ["app==web", ["web"]],
    ["app = web", ["web"]],
    ["app!=web", ["none", "empty", "db", "blank"]],
    ["app=", ["blank"]],
    ["app in (web,db)", ["web", "db"]],
    ["app in ( web , db )", ["web", "db"]],
    ["app notin (web)", ["none", "empty", "db", "blank"]],
    ["app,tier=back", ["db"]],
    ["app in (web,db),tier!=front", ["db"]],
    ["example.com/owner=alice", ["db"]],
    ["!example.com/owner,app", ["web", "blank"]],
    ["tier notin (front,back)", ["none", "empty", "blank"]],
  ];
  for (const [selector, want] of cases)
    it(JSON.stringify(selector), () => {
      checkLabelSelector(selector); // the gateway accepts it, so the cache must read it
      assert.deepEqual(picks(selector), want);
    });

  it("throws on what it does not read (the apiserver answers those)", () => {
    assert.throws(() => parseSelector("a b c"));
  });
});
