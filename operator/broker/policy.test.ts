import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { brokerWorld } from "./fixtures.ts";
import { decide, type BrokerInputs } from "./policy.ts";

const w = brokerWorld();
const base = (over: Partial<BrokerInputs> = {}): BrokerInputs => ({
  caller: w.caller(),
  workspaceId: "team.ws",
  ...w.inputs(w.caller(), "team.ws"),
  ...over,
});

describe("store broker policy", () => {
  it("lets the pod a workspace is placed on have its objects", () => {
    const d = decide(base());
    assert.equal(d.allow, true);
  });

  const refused: [string, Partial<BrokerInputs>, 403 | 404, RegExp][] = [
    ["another namespace's workspace", { workspaceId: "other.ws" }, 403, /another namespace/],
    ["a pod the cache does not know", { pod: undefined }, 403, /not a known sandbox pod/],
    [
      "a token bound to an earlier pod of that name",
      { caller: w.caller("fleet-sandbox-1", "old-uid") },
      403,
      /not a known sandbox pod/,
    ],
    ["a pod outside the fleet's owner chain", { replicaSets: [] }, 403, /not the fleet's/],
    [
      "a workspace placed on another pod",
      { workspaceId: "team.elsewhere", workspace: w.workspaces[1] },
      403,
      /placed on fleet-sandbox-2, not on fleet-sandbox-1/,
    ],
    [
      "a workspace that does not exist",
      { workspaceId: "team.nope", workspace: undefined },
      404,
      /does not exist/,
    ],
    [
      "a workspace of another fleet",
      { workspace: { ...w.workspaces[0]!, spec: { ...w.workspaces[0]!.spec, fleetRef: { name: "other" } } } },
      403,
      /belongs to fleet other/,
    ],
    ["a pod of no fleet", { fleet: undefined }, 403, /not a sandbox of a known fleet/],
  ];
  for (const [name, over, status, reason] of refused)
    it(`refuses ${name}`, () => {
      const d = decide(base(over));
      assert.equal(d.allow, false);
      if (d.allow) return;
      assert.equal(d.status, status);
      assert.match(d.reason, reason);
    });
});
