import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cronJobView, jobView, metadataOnly } from "./projections.ts";

const owner = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  name: "a",
  uid: "o1",
  controller: true,
};
const meta = {
  name: "x",
  namespace: "ns",
  uid: "u1",
  resourceVersion: "7",
  creationTimestamp: "2026-01-01T00:00:00Z",
  labels: { app: "x" },
  annotations: { "agentry.dev/spec-hash": "h", "kubectl.kubernetes.io/last-applied-configuration": "{...}" },
  ownerReferences: [{ ...owner, blockOwnerDeletion: true }],
  managedFields: [{ manager: "agentry" }],
};

describe("projections", () => {
  it("keep identity, labels, agentry's annotations and owners; drop the rest", () => {
    const out = metadataOnly({
      apiVersion: "v1",
      kind: "Service",
      metadata: structuredClone(meta),
      spec: { ports: [] },
    });
    const { managedFields: _managed, ...kept } = meta;
    assert.deepEqual(out, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { ...kept, annotations: { "agentry.dev/spec-hash": "h" }, ownerReferences: [owner] },
    });
  });

  it("keep what a Pipeline reads of its Jobs and CronJobs", () => {
    const job = jobView({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: structuredClone(meta),
      spec: { activeDeadlineSeconds: 60, template: { spec: { containers: [] } } },
      status: {
        startTime: "t0",
        active: 1,
        ready: 1,
        conditions: [{ type: "Complete", status: "True", lastProbeTime: "t" }],
      },
    });
    assert.deepEqual(job["spec"], { activeDeadlineSeconds: 60 });
    assert.deepEqual(job["status"], {
      startTime: "t0",
      active: 1,
      conditions: [{ type: "Complete", status: "True" }],
    });
    const cron = cronJobView({
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: structuredClone(meta),
      spec: { schedule: "* * * * *" },
      status: { lastScheduleTime: "t1" },
    });
    assert.deepEqual(cron["status"], { lastScheduleTime: "t1" });
    assert.equal(cron["spec"], undefined);
  });
});
