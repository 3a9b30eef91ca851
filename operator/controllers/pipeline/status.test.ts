import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Pipeline, PipelineStatus } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import {
  computePipelineStatus,
  HISTORY_LIMIT,
  runHistory,
  unexplainedFailures,
  type JobView,
  type PipelineObservation,
} from "./status.ts";

const now = new Date("2026-11-23T12:00:00Z");

function pipeline(spec: Record<string, unknown> = {}, status?: PipelineStatus): Pipeline {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Pipeline",
    metadata: { name: "p", namespace: "ns", uid: "u", generation: 2 },
    spec: specSchemas.Pipeline.parse({ steps: [{ name: "a", image: "x:1" }], ...spec }),
    ...(status ? { status } : {}),
  };
}

const at = (minute: number) => `2026-11-23T10:${String(minute).padStart(2, "0")}:00Z`;

function job(
  name: string,
  minute: number,
  result: "Running" | "Complete" | "Failed",
  reason?: string,
): JobView {
  const conditions =
    result === "Running"
      ? []
      : [
          {
            type: result,
            status: "True",
            ...(reason ? { reason, message: "Job has reached the specified backoff limit" } : {}),
            lastTransitionTime: at(minute + 1),
          },
        ];
  return {
    metadata: { name, creationTimestamp: at(minute) },
    status: {
      startTime: at(minute),
      ...(result === "Complete" ? { completionTime: at(minute + 1) } : {}),
      conditions,
    },
  };
}

const observe = (o: Partial<PipelineObservation>): PipelineObservation => ({
  mode: "Job",
  childName: "p-abc",
  childExists: true,
  manifestConfigMap: "p-manifest",
  jobs: [],
  ...o,
});

const ready = (s: PipelineStatus) => s.conditions?.find((c) => c.type === "Ready");

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

  it("stalls a schedule whose last three finished runs failed, and a step's agent missing past the bound", () => {
    const type = (s: PipelineStatus) => s.conditions!.find((x) => x.type !== "Ready")?.type;
    const failing = (n: number) =>
      observe({
        mode: "CronJob",
        childName: "p",
        jobs: [
          job("p-0", 1, "Complete"),
          ...Array.from({ length: n }, (_, i) => job(`p-${i + 1}`, i + 2, "Failed", "BackoffLimitExceeded")),
        ],
      });
    assert.equal(
      type(computePipelineStatus(pipeline({ schedule: "@daily" }), failing(2), now)),
      "Reconciling",
    );
    assert.equal(type(computePipelineStatus(pipeline({ schedule: "@daily" }), failing(3), now)), "Stalled");
    const old = pipeline({ schedule: "@daily" });
    old.metadata.creationTimestamp = new Date(now.getTime() - 10 * 60_000).toISOString();
    const missing = observe({ childExists: false, agentProblem: "AgentRuntime coder does not exist" });
    assert.equal(type(computePipelineStatus(old, missing, now)), "Stalled");
    assert.equal(
      type(computePipelineStatus(old, { ...missing, stallAfterMs: 3_600_000 }, now)),
      "Reconciling",
    );
  });

  it("reports runs newest first, active count, times and the latest failure", () => {
    const s = computePipelineStatus(
      pipeline({ schedule: "@daily" }),
      observe({
        mode: "CronJob",
        childName: "p",
        jobs: [
          job("p-1", 1, "Failed", "BackoffLimitExceeded"),
          job("p-3", 9, "Running"),
          job("p-2", 5, "Complete"),
        ],
        cronJobStatus: { lastScheduleTime: at(9) },
        lastRunRequest: "req-1",
      }),
      now,
    );
    assert.deepEqual(
      s.history?.map((r) => [r.jobName, r.result]),
      [
        ["p-3", "Running"],
        ["p-2", "Succeeded"],
        ["p-1", "Failed"],
      ],
    );
    assert.equal(s.active, 1);
    assert.equal(s.lastScheduleTime, at(9));
    assert.equal(s.lastSuccessfulTime, at(6));
    assert.equal(s.lastFailure?.jobName, "p-1");
    assert.equal(s.lastFailure?.reason, "BackoffLimitExceeded");
    assert.equal(s.lastFailure?.completionTime, at(2));
    assert.equal(s.lastRunRequest, "req-1");
    assert.equal(s.childKind, "CronJob");
    assert.equal(s.manifestConfigMap, "p-manifest");
  });

  it("keeps finished runs and the last failure after their Jobs are gone", () => {
    const first = computePipelineStatus(
      pipeline(),
      observe({ jobs: [job("p-old", 1, "Failed", "BackoffLimitExceeded")] }),
      now,
    );
    const later = computePipelineStatus(
      pipeline({}, first),
      observe({ jobs: [job("p-abc", 5, "Complete")] }),
      now,
    );
    assert.deepEqual(
      later.history?.map((r) => r.jobName),
      ["p-abc", "p-old"],
    );
    assert.equal(later.lastFailure?.jobName, "p-old");
    assert.equal(later.phase, "Succeeded");
  });

  it("is stable: recomputing from its own output changes nothing", () => {
    const o = observe({ jobs: [job("p-abc", 1, "Complete")] });
    const first = computePipelineStatus(pipeline(), o, now);
    const second = computePipelineStatus(pipeline({}, first), o, new Date("2026-11-24T00:00:00Z"));
    assert.deepEqual(second, first);
  });
});

describe("runHistory", () => {
  it("caps the history and drops remembered runs that were still running", () => {
    const observed = Array.from({ length: 12 }, (_, i) => ({
      jobName: `j${i}`,
      startTime: at(i + 10),
      result: "Succeeded" as const,
    }));
    const previous = [{ jobName: "gone", startTime: at(59), result: "Running" as const }];
    const h = runHistory(previous, observed);
    assert.equal(h.length, HISTORY_LIMIT);
    assert.equal(h[0]!.jobName, "j11");
    assert.ok(!h.some((r) => r.jobName === "gone"));
  });
});

describe("failure messages", () => {
  it("asks once for the pod's message of a failed Job and keeps it", () => {
    const failed = job("p-abc", 1, "Failed", "BackoffLimitExceeded");
    assert.deepEqual(unexplainedFailures(undefined, [failed, job("p-ok", 2, "Complete")]), ["p-abc"]);
    const first = computePipelineStatus(
      pipeline(),
      observe({ jobs: [failed], podMessages: { "p-abc": "exit 3: no input" } }),
      now,
    );
    assert.match(first.lastFailure?.message ?? "", /no input$/);
    assert.deepEqual(unexplainedFailures(first, [failed]), []);
    const again = computePipelineStatus(pipeline({}, first), observe({ jobs: [failed] }), now);
    assert.equal(again.lastFailure?.message, first.lastFailure?.message);
  });
});
