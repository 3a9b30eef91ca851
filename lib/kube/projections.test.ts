import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { cronJobView, jobView, metadataOnly, podView } from "./projections.ts";

/** V8's own answer: whether `o` keeps fast properties (not a dictionary-mode object). */
setFlagsFromString("--allow-natives-syntax");
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- V8 natives syntax is only parsed this way
const hasFastProperties = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean;
setFlagsFromString("--no-allow-natives-syntax");

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

  it("are objects with fast properties, not V8 dictionaries (~800 bytes each, as a delete makes them)", () => {
    const raw = () => JSON.parse(JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: meta })) as never;
    const dictionary: Record<string, unknown> = JSON.parse(JSON.stringify(meta)) as never;
    delete dictionary["managedFields"];
    assert.equal(hasFastProperties(dictionary), false, "the check can fail");
    const service = metadataOnly(raw());
    const pod = podView({
      ...(raw() as object),
      spec: { nodeName: "n1" },
      status: {
        phase: "Running",
        conditions: [{ type: "Ready", status: "True", lastProbeTime: null }],
        containerStatuses: [{ name: "agent", ready: true, restartCount: 0, state: {}, image: "x" }],
      },
    } as never);
    for (const o of [
      service,
      service.metadata,
      service.metadata.ownerReferences![0]!,
      pod.metadata,
      pod["spec"] as object,
      pod.status!,
      pod.status!.conditions![0]!,
      pod.status!.containerStatuses![0]!,
    ])
      assert.equal(hasFastProperties(o), true, JSON.stringify(o));
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
