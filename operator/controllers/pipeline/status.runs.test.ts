// computePipelineStatus over runs: stalls, history, failures and their messages.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PipelineStatus } from "../../../api/v1alpha1/index.ts";
import { at, job, now, observe, pipeline } from "./fixtures.ts";
import { computePipelineStatus, HISTORY_LIMIT, runHistory, unexplainedFailures } from "./status.ts";

describe("computePipelineStatus: runs", () => {
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
