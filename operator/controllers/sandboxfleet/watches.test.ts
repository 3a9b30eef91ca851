import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../../lib/kube/client.ts";
import type { Controller } from "../../../lib/kube/controller.ts";
import { FleetTestbed, NS, workspaceObject } from "../../../test/harness/fleetbed.ts";

const agent = (spec: Record<string, unknown>, status?: Record<string, unknown>): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name: "coder", namespace: NS, uid: "uid-coder", generation: 1 },
  spec: { image: "registry.example/agent:1", ...spec },
  ...(status ? { status } : {}),
});

describe("what wakes a fleet", () => {
  it("an agent of one of its workspaces when it comes, moves or goes; not its status writes nor other changes", () => {
    const bed = new FleetTestbed();
    bed.informers.workspaces.set(workspaceObject("app"));
    bed.informers.workspaces.set(workspaceObject("docs", { fleetRef: { name: "other" } }));
    const woken: string[] = [];
    bed.reconciler.watches.register({ enqueue: (key: string) => woken.push(key) } as unknown as Controller);

    bed.informers.agents.set(agent({ workspaceRef: { name: "app" } }));
    assert.deepEqual(woken, [`${NS}/pool`], "came");
    woken.length = 0;
    bed.informers.agents.set(agent({ workspaceRef: { name: "app" } }, { phase: "Ready" }));
    bed.informers.agents.set(agent({ workspaceRef: { name: "app" }, env: [{ name: "A", value: "1" }] }));
    assert.deepEqual(woken, [], "a status write and an env change concern no fleet");
    bed.informers.agents.set(agent({ workspaceRef: { name: "docs" } }));
    assert.deepEqual(woken.sort(), [`${NS}/other`, `${NS}/pool`], "moved: both fleets");
    woken.length = 0;
    bed.informers.agents.remove(NS, "coder");
    assert.deepEqual(woken, [`${NS}/other`], "went");
  });

  it("an agent whose new version does not parse (it leaves the fleet's policy)", () => {
    const bed = new FleetTestbed();
    bed.informers.workspaces.set(workspaceObject("app"));
    bed.informers.agents.set(agent({ workspaceRef: { name: "app" } }));
    const woken: string[] = [];
    bed.reconciler.watches.register({ enqueue: (key: string) => woken.push(key) } as unknown as Controller);
    bed.informers.agents.set(agent({ workspaceRef: { name: "app" }, image: 42 }));
    assert.deepEqual(woken, [`${NS}/pool`]);
  });
});
