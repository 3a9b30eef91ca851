// computePipelineStatus: the conditions for each situation (a table).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PipelineObservation } from "./status.ts";
import { job, now, observe, pipeline, ready } from "./fixtures.ts";
import { computePipelineStatus } from "./status.ts";

describe("computePipelineStatus", () => {
  const cases: {
    name: string;
    spec?: Record<string, unknown>;
    o: Partial<PipelineObservation>;
    phase: string;
    ready: "True" | "False";
    reason: string;
    message?: RegExp;
  }[] = [
    {
      name: "one-shot not created yet",
      o: { childExists: false },
      phase: "Pending",
      ready: "False",
      reason: "Creating",
    },
    {
      name: "one-shot running",
      o: { jobs: [job("p-abc", 1, "Running")] },
      phase: "Running",
      ready: "False",
      reason: "Running",
    },
    {
      name: "one-shot succeeded",
      o: { jobs: [job("p-abc", 1, "Complete")] },
      phase: "Succeeded",
      ready: "True",
      reason: "Succeeded",
    },
    {
      name: "one-shot failed",
      o: { jobs: [job("p-abc", 1, "Failed", "BackoffLimitExceeded")], podMessages: { "p-abc": "boom" } },
      phase: "Failed",
      ready: "False",
      reason: "RunFailed",
      message: /run p-abc failed \(BackoffLimitExceeded\): Job has reached .*: boom/,
    },
    {
      name: "one-shot rerun after a failure",
      o: { jobs: [job("p-old", 1, "Failed", "DeadlineExceeded"), job("p-abc", 5, "Running")] },
      phase: "Running",
      ready: "False",
      reason: "Running",
    },
    {
      name: "cron, CronJob not created yet",
      spec: { schedule: "@daily" },
      o: { mode: "CronJob", childName: "p", childExists: false },
      phase: "Pending",
      ready: "False",
      reason: "Creating",
      message: /creating CronJob p/,
    },
    {
      name: "cron scheduled",
      spec: { schedule: "@daily" },
      o: { mode: "CronJob", childName: "p" },
      phase: "Scheduled",
      ready: "True",
      reason: "Scheduled",
      message: /CronJob p runs on "@daily"/,
    },
    {
      name: "cron with a run in progress",
      spec: { schedule: "@daily" },
      o: { mode: "CronJob", childName: "p", jobs: [job("p-1", 1, "Complete"), job("p-2", 5, "Running")] },
      phase: "Running",
      ready: "True",
      reason: "Scheduled",
      message: /1 run\(s\) in progress/,
    },
    {
      name: "cron whose latest finished run failed",
      spec: { schedule: "@daily" },
      o: {
        mode: "CronJob",
        childName: "p",
        jobs: [job("p-1", 1, "Complete"), job("p-2", 5, "Failed", "DeadlineExceeded")],
      },
      phase: "Failed",
      ready: "False",
      reason: "RunFailed",
    },
    {
      name: "cron recovered after a failure",
      spec: { schedule: "@daily" },
      o: {
        mode: "CronJob",
        childName: "p",
        jobs: [job("p-1", 1, "Failed", "BackoffLimitExceeded"), job("p-2", 5, "Complete")],
      },
      phase: "Scheduled",
      ready: "True",
      reason: "Scheduled",
    },
    {
      name: "suspended",
      spec: { schedule: "@daily", suspended: true },
      o: { mode: "CronJob", childName: "p" },
      phase: "Suspended",
      ready: "True",
      reason: "Suspended",
    },
    {
      name: "missing agent",
      o: { childExists: false, agentProblem: "AgentRuntime coder does not exist" },
      phase: "Pending",
      ready: "False",
      reason: "AgentNotFound",
      message: /coder does not exist/,
    },
    {
      name: "write error",
      o: { reconcileError: "could not update child objects: forbidden" },
      phase: "Pending",
      ready: "False",
      reason: "ReconcileError",
    },
    {
      name: "a child's name held by someone else's object, even while suspended",
      spec: { schedule: "@daily", suspended: true },
      o: {
        mode: "CronJob",
        childName: "p",
        childExists: false,
        nameConflict: "ConfigMap p-manifest already exists and is not managed by Pipeline p",
      },
      phase: "Pending",
      ready: "False",
      reason: "NameConflict",
      message: /^ConfigMap p-manifest already exists/,
    },
  ];
  // kstatus's reading where Ready is False: Stalled (Failed) needs a change, Reconciling does not.
  const stalled = new Set([
    "one-shot failed",
    "a child's name held by someone else's object, even while suspended",
  ]);
  for (const c of cases) {
    it(c.name, () => {
      const s = computePipelineStatus(pipeline(c.spec), observe(c.o), now);
      assert.equal(s.phase, c.phase);
      const r = ready(s)!;
      assert.equal(r.status, c.ready);
      const abnormal = s.conditions!.filter((x) => x.type !== "Ready");
      const want = c.ready === "True" ? [] : [stalled.has(c.name) ? "Stalled" : "Reconciling"];
      assert.deepEqual(
        abnormal.map((x) => x.type),
        want,
      );
      for (const x of abnormal) assert.equal(x.reason, r.reason);
      assert.equal(r.reason, c.reason);
      assert.equal(r.observedGeneration, 2);
      assert.equal(s.observedGeneration, 2);
      if (c.message) assert.match(r.message, c.message);
    });
  }
});
