// staleChild: which labelled objects the AgentRuntime controller may delete.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { staleChild } from "./inputs.ts";
describe("staleChild: which labelled objects the controller may delete", () => {
  const obj = (annotations: Record<string, string>, owner?: string) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "coder",
      annotations,
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: "agentry.dev/v1alpha1",
                kind: "AgentRuntime",
                name: "coder",
                uid: owner,
                controller: true,
              },
            ],
          }
        : {}),
    },
  });
  const ours = (uid: string) => ({ "agentry.dev/agent-id": uid, "agentry.dev/controller-id": "agentry" });
  const cases: [string, ReturnType<typeof obj>, string | undefined, boolean][] = [
    ["the live AgentRuntime's own child", obj(ours("uid-1"), "uid-1"), "uid-1", false],
    ["an earlier AgentRuntime's child", obj(ours("uid-0"), "uid-0"), "uid-1", true],
    ["orphaned (owner reference removed), no AgentRuntime now", obj(ours("uid-0")), undefined, true],
    ["orphaned, AgentRuntime recreated", obj(ours("uid-0")), "uid-1", true],
    ["labels only, no agentry annotations", obj({}), undefined, false],
    ["labels only, a live AgentRuntime of that name", obj({}), "uid-1", false],
    [
      "another installation's child",
      obj({ "agentry.dev/agent-id": "uid-0", "agentry.dev/controller-id": "other" }),
      undefined,
      false,
    ],
  ];
  for (const [name, o, live, stale] of cases)
    it(`${name} → ${stale ? "delete" : "keep"}`, () => assert.equal(staleChild(o, live, "agentry"), stale));
});
