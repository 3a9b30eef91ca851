import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Workspace } from "../../../api/v1alpha1/index.ts";
import { ANNOTATION_IDLE_SUSPENDED, specSchemas } from "../../../api/v1alpha1/index.ts";
import type { WorkspaceInfo } from "../../../contracts/sandbox.ts";
import type { SandboxView } from "./placement.ts";
import { demandOf, planWorkspaces, type WorkspaceInput } from "./plan.ts";

const NOW = new Date("2026-12-01T12:00:00Z");

const workspace = (
  name: string,
  spec: Record<string, unknown> = {},
  over: { status?: Workspace["status"]; created?: string; deleting?: boolean } = {},
): Workspace => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: {
    name,
    namespace: "team",
    uid: `uid-${name}`,
    creationTimestamp: over.created ?? "2026-12-01T10:00:00Z",
    ...(over.deleting ? { deletionTimestamp: "2026-12-01T11:59:00Z" } : {}),
  },
  spec: specSchemas.Workspace.parse({ fleetRef: { name: "pool" }, ...spec }),
  ...(over.status ? { status: over.status } : {}),
});
const sandbox = (name: string, over: Partial<SandboxView> = {}): SandboxView => ({
  name,
  ready: true,
  draining: false,
  workspaces: [],
  ...over,
});
const on = (pod: string) => ({ status: { phase: "Ready" as const, sandboxPod: pod } });
const info = (id: string, lastActivityTime: string): WorkspaceInfo => ({
  id,
  ownerId: null,
  createdAt: lastActivityTime,
  lastActivityTime,
  durability: { phase: "ready", durable: true, dirty: false },
});

const input = (over: Partial<WorkspaceInput>): WorkspaceInput => ({
  members: [],
  sandboxes: [sandbox("s1"), sandbox("s2")],
  lists: new Map(),
  stopping: new Set(),
  stored: false,
  policy: { maxPerSandbox: 4, cpu: 0.8, memory: 0.8, ownerlessPool: "shared" },
  wakeAsks: new Map(),
  ...over,
});

describe("planWorkspaces", () => {
  it("sorts each workspace into what it needs", () => {
    const plan = planWorkspaces(
      input({
        stored: true,
        members: [
          workspace("deleted", {}, { deleting: true, ...on("s1") }),
          workspace("asleep", { suspended: true }, on("s1")),
          workspace("idle", { idleTimeout: "10m" }, on("s1")),
          workspace("kept", {}, on("s1")),
          workspace("moving", {}, on("gone-pod")),
          workspace("stopping", {}, on("stopping-pod")),
        ],
        stopping: new Set(["stopping-pod"]),
        lists: new Map([["s1", new Map([["team.idle", info("team.idle", "2026-12-01T11:00:00Z")]])]]),
      }),
      NOW,
    );
    const names = (ws: { metadata: { name?: string } }[]) => ws.map((w) => w.metadata.name);
    assert.deepEqual(names(plan.deleting), ["deleted"]);
    assert.deepEqual(
      plan.release.map((r) => [r.ws.metadata.name, r.home, r.idle !== undefined]),
      [
        ["asleep", "s1", false],
        ["idle", "s1", true],
      ],
    );
    assert.deepEqual(names(plan.leavingHome), ["stopping"]);
    assert.deepEqual(
      plan.onSandbox.map((o) => [o.ws.metadata.name, o.sandbox]),
      [
        ["kept", "s1"],
        ["moving", "s1"],
      ],
      "a workspace whose sandbox is gone is placed again (shared: with the others)",
    );
  });

  it("places the oldest first and says why the others wait, counting the sandboxes they need", () => {
    const plan = planWorkspaces(
      input({
        sandboxes: [sandbox("s1")],
        members: [
          workspace("young", { ownerId: "bob" }, { created: "2026-12-01T11:00:00Z" }),
          workspace("old", { ownerId: "alice" }, { created: "2026-12-01T09:00:00Z" }),
        ],
      }),
      NOW,
    );
    assert.deepEqual(
      plan.onSandbox.map((o) => [o.ws.metadata.name, o.sandbox]),
      [["old", "s1"]],
    );
    assert.deepEqual(
      plan.waiting.map((w) => [w.ws.metadata.name, w.why]),
      [["young", "no empty sandbox is ready yet"]],
    );
    assert.equal(plan.newSandboxesNeeded, 1);
    assert.deepEqual(demandOf(plan, input({}).policy), { occupied: 1, newSandboxesNeeded: 1, pressured: 0 });
  });

  it("never puts another owner beside a workspace it does not manage", () => {
    const plan = planWorkspaces(
      input({
        sandboxes: [
          sandbox("s1", { workspaces: [{ key: "team/broken", ownerId: "invalid workspace team/broken" }] }),
        ],
        members: [workspace("new", { ownerId: "carol" })],
      }),
      NOW,
    );
    assert.deepEqual(plan.onSandbox, []);
    assert.equal(plan.sandboxes[0]!.workspaces.length, 1);
  });

  it("counts sandboxes under pressure that hold workspaces", () => {
    const plan = planWorkspaces(
      input({
        sandboxes: [
          sandbox("s1", { load: { cpu: 0.9, memory: 0.1 } }),
          sandbox("s2", { load: { cpu: 0.9, memory: 0.1 } }),
        ],
        members: [workspace("a", {}, on("s1"))],
      }),
      NOW,
    );
    assert.deepEqual(demandOf(plan, input({}).policy), { occupied: 1, newSandboxesNeeded: 0, pressured: 1 });
  });

  it("wakes a workspace asleep for idleness that a sandbox was asked for, and places one back where asked", () => {
    const asleep = workspace("asleep");
    const sleeping = {
      ...asleep,
      metadata: { ...asleep.metadata, annotations: { [ANNOTATION_IDLE_SUSPENDED]: "2026-12-01T11:00:00Z" } },
    };
    const plan = planWorkspaces(
      input({
        members: [sleeping, workspace("woken", { ownerId: "dan" })],
        wakeAsks: new Map([
          ["team.asleep", "s2"],
          ["team.woken", "s2"],
        ]),
      }),
      NOW,
    );
    assert.deepEqual(
      plan.wake.map((w) => [w.ws.metadata.name, w.sandbox]),
      [["asleep", "s2"]],
    );
    assert.deepEqual(plan.release, [], "not released as a suspended one");
    assert.deepEqual(
      plan.onSandbox.map((o) => [o.ws.metadata.name, o.sandbox]),
      [["woken", "s2"]],
      "s1 would come first by name: the ask wins",
    );
  });
});
