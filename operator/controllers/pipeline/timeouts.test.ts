import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { PipelineStep } from "../../../api/v1alpha1/index.ts";
import {
  STEP_CHECK_MAX_MS,
  checkStepTimeouts,
  deadlineNow,
  timedSteps,
  type StepPodView,
} from "./timeouts.ts";

const now = new Date("2026-11-30T12:00:00Z");
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const running = (name: string, startedSecondsAgo: number) => ({
  name,
  state: { running: { startedAt: ago(startedSecondsAgo) } },
});

describe("step time limits", () => {
  const steps: PipelineStep[] = [
    { name: "fetch", image: "ghcr.io/acme/fetch:1", timeoutSeconds: 30 },
    { name: "think", agentRef: { name: "a" }, timeoutSeconds: 5 },
    { name: "build", image: "ghcr.io/acme/build:1" },
    { name: "ship", image: "ghcr.io/acme/ship:1", timeoutSeconds: 60 },
  ] as PipelineStep[];

  it("times image steps only (agentRef steps are timed by the dispatcher)", () => {
    assert.deepEqual(
      [...timedSteps(steps)],
      [
        ["fetch", 30],
        ["ship", 60],
      ],
    );
  });

  it("finds an init container running past its limit", () => {
    const pod: StepPodView = { status: { phase: "Pending", initContainerStatuses: [running("fetch", 31)] } };
    const v = checkStepTimeouts(timedSteps(steps), [pod], now);
    assert.equal(v.overdue?.step, "fetch");
    assert.equal(v.overdue?.runningSeconds, 31);
    assert.match(v.overdue?.message ?? "", /step "fetch" ran 31 s, longer than its timeoutSeconds \(30 s\)/);
  });

  it("finds the main container past its limit, ignoring untimed and finished pods", () => {
    const pods: StepPodView[] = [
      { status: { phase: "Failed", containerStatuses: [running("ship", 999)] } },
      {
        status: {
          phase: "Running",
          initContainerStatuses: [running("build", 999)],
          containerStatuses: [running("ship", 61)],
        },
      },
    ];
    assert.equal(checkStepTimeouts(timedSteps(steps), pods, now).overdue?.step, "ship");
  });

  it("within its limit: no verdict, and looks again just after the nearest limit", () => {
    const pod: StepPodView = { status: { phase: "Pending", initContainerStatuses: [running("fetch", 27)] } };
    const v = checkStepTimeouts(timedSteps(steps), [pod], now);
    assert.equal(v.overdue, undefined);
    assert.equal(v.nextCheckMs, 3100);
  });

  it("looks again within STEP_CHECK_MAX_MS when nothing timed is running yet", () => {
    assert.equal(checkStepTimeouts(timedSteps(steps), [{}], now).nextCheckMs, STEP_CHECK_MAX_MS);
    const waiting: StepPodView = { status: { initContainerStatuses: [{ name: "fetch", state: {} }] } };
    assert.equal(checkStepTimeouts(timedSteps(steps), [waiting], now).overdue, undefined);
  });

  it("a step is overdue exactly when it ran longer than its limit (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 86400 }),
        fc.integer({ min: 0, max: 200_000 }),
        (limit, ranMs) => {
          const startedAt = new Date(now.getTime() - ranMs).toISOString();
          const pod: StepPodView = {
            status: {
              phase: "Running",
              containerStatuses: [{ name: "s", state: { running: { startedAt } } }],
            },
          };
          const v = checkStepTimeouts(new Map([["s", limit]]), [pod], now);
          assert.equal(v.overdue !== undefined, ranMs > limit * 1000);
          assert.ok(v.nextCheckMs >= 100 && v.nextCheckMs <= STEP_CHECK_MAX_MS);
        },
      ),
    );
  });

  it("lowers the Job's deadline to its age, never raising one", () => {
    assert.equal(deadlineNow(ago(42.5), undefined, now), 42);
    assert.equal(deadlineNow(ago(42), 10, now), 10);
    assert.equal(deadlineNow(undefined, undefined, now), 1);
    assert.equal(deadlineNow(ago(0.2), 600, now), 1);
  });
});
