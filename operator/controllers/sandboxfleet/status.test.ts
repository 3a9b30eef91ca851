import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import { ANNOTATION_IDLE_SUSPENDED, specSchemas } from "../../../api/v1alpha1/index.ts";
import {
  computeFleetStatus,
  computeWorkspaceStatus,
  type FleetObservation,
  type WorkspaceObservation,
} from "./status.ts";

const statusFleet: SandboxFleet = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "SandboxFleet",
  metadata: { name: "f", namespace: "ns", uid: "u", generation: 4 },
  spec: specSchemas.SandboxFleet.parse({ template: { image: "registry.example/sandbox:1" }, maxReplicas: 3 }),
};
const base: FleetObservation = {
  replicas: 2,
  readyReplicas: 2,
  desiredReplicas: 2,
  workspaces: 3,
  waiting: 0,
  atMax: false,
};

describe("computeFleetStatus", () => {
  const cases: [string, Partial<FleetObservation>, "True" | "False", string, RegExp][] = [
    ["ready", {}, "True", "FleetReady", /2 sandboxes ready, 3 workspace/],
    ["scaling", { readyReplicas: 1 }, "False", "Scaling", /1\/2 sandboxes ready/],
    ["at capacity", { waiting: 2, atMax: true }, "False", "AtCapacity", /raise spec.maxReplicas/],
    [
      "write error",
      { error: "could not update Deployment f-sandbox: forbidden" },
      "False",
      "ReconcileError",
      /forbidden/,
    ],
    [
      "name held by someone else's object, over any other problem",
      {
        nameConflict: "Deployment f-sandbox already exists and is not managed by SandboxFleet f",
        error: "x",
        waiting: 1,
        atMax: true,
      },
      "False",
      "NameConflict",
      /^Deployment f-sandbox already exists/,
    ],
  ];
  for (const [name, o, status, reason, message] of cases)
    it(name, () => {
      const ready = computeFleetStatus(statusFleet, { ...base, ...o }, new Date("2026-11-23T10:00:00Z"))
        .conditions?.[0];
      assert.equal(ready?.status, status);
      assert.equal(ready?.reason, reason);
      assert.match(ready?.message ?? "", message);
      assert.equal(ready?.observedGeneration, 4);
    });

  // kstatus: Stalled (Failed) when someone must change something, else Reconciling (InProgress).
  const abnormal: Record<string, string | undefined> = {
    ready: undefined,
    scaling: "Reconciling",
    "at capacity": "Stalled",
    "write error": "Reconciling",
    "name held by someone else's object, over any other problem": "Stalled",
  };
  for (const [name, o] of cases)
    it(`${name}: ${abnormal[name] ?? "no abnormal condition"}`, () => {
      const conditions = computeFleetStatus(
        statusFleet,
        { ...base, ...o },
        new Date("2026-11-23T10:00:00Z"),
      ).conditions!;
      assert.deepEqual(
        conditions.slice(1).map((c) => [c.type, c.status, c.reason]),
        abnormal[name] ? [[abnormal[name], "True", conditions[0]!.reason]] : [],
      );
    });
});

describe("computeWorkspaceStatus", () => {
  const now = new Date("2026-11-23T10:00:00Z");
  const ws = (spec: Partial<Workspace["spec"]> = {}, ageMs = 0): Workspace => ({
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: {
      name: "w",
      namespace: "ns",
      generation: 2,
      creationTimestamp: new Date(now.getTime() - ageMs).toISOString(),
    },
    spec: specSchemas.Workspace.parse({ fleetRef: { name: "f" }, ...spec }),
  });
  const placement = { sandboxPod: "f-1", endpoint: "http://f-1:8080", placedAt: "2026-11-23T09:00:00Z" };
  const idle = (w: Workspace): Workspace => ({
    ...w,
    metadata: { ...w.metadata, annotations: { [ANNOTATION_IDLE_SUSPENDED]: "2026-11-23T09:30:00Z" } },
  });
  const cases: [string, Workspace, WorkspaceObservation, string, string, string | undefined][] = [
    ["ready", ws(), { placement, confirmed: true }, "Ready", "Placed", undefined],
    ["suspended: what the spec asks", ws({ suspended: true }), {}, "Suspended", "Suspended", undefined],
    [
      "suspended for idleness, even with the placement it had",
      idle(ws({ idleTimeout: "5m" })),
      { placement, confirmed: true },
      "Suspended",
      "IdleSuspended",
      undefined,
    ],
    ["waiting for room", ws(), { waiting: "fleet growing" }, "Pending", "WaitingForCapacity", "Reconciling"],
    ["sandbox not confirmed yet", ws(), { placement }, "Placed", "SandboxError", "Reconciling"],
    [
      "fleet missing, just created",
      ws({}, 1000),
      { fleetMissing: true },
      "Pending",
      "FleetNotFound",
      "Reconciling",
    ],
    [
      "fleet missing past the bound",
      ws({}, 10 * 60_000),
      { fleetMissing: true },
      "Pending",
      "FleetNotFound",
      "Stalled",
    ],
    [
      "fleet missing, a longer bound",
      ws({}, 10 * 60_000),
      { fleetMissing: true, stallAfterMs: 3_600_000 },
      "Pending",
      "FleetNotFound",
      "Reconciling",
    ],
  ];
  for (const [name, w, o, phase, reason, abnormal] of cases)
    it(name, () => {
      const s = computeWorkspaceStatus(w, o, now);
      assert.equal(s.phase, phase);
      if (phase === "Suspended") assert.equal(s.sandboxPod, undefined, "no sandbox while suspended");
      const [ready, ...rest] = s.conditions!;
      assert.equal(ready!.type, "Ready");
      assert.equal(ready!.status, abnormal ? "False" : "True");
      assert.equal(ready!.reason, reason);
      assert.deepEqual(
        rest.filter((c) => c.type !== "Durable").map((c) => [c.type, c.reason]),
        abnormal ? [[abnormal, reason]] : [],
      );
      // These fleets have no object store: the workspace says what that loses.
      const durable = rest.find((c) => c.type === "Durable");
      if (!o.fleetMissing) assert.deepEqual([durable?.status, durable?.reason], ["False", "NoStore"]);
    });
});
