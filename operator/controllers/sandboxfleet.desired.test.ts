import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SandboxFleet } from "../../api/v1alpha1/index.ts";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import { computeFleetStatus, type FleetObservation } from "./sandboxfleet.desired.ts";

const fleet: SandboxFleet = {
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
      const ready = computeFleetStatus(fleet, { ...base, ...o }, new Date("2026-11-23T10:00:00Z"))
        .conditions?.[0];
      assert.equal(ready?.status, status);
      assert.equal(ready?.reason, reason);
      assert.match(ready?.message ?? "", message);
      assert.equal(ready?.observedGeneration, 4);
    });
});
