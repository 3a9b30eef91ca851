// Step time limits of image steps. Steps run as the containers of one Job pod (init
// containers in order, the last as the main container), so Kubernetes knows no per-step
// deadline: the operator reads when each step's container started and, once one has run
// longer than its timeoutSeconds, ends the run by lowering the Job's activeDeadlineSeconds
// (the Job controller then fails it with DeadlineExceeded and stops its pod). agentRef
// steps are timed by the dispatcher in the pod itself. Pure.
import type { PipelineStep } from "../../../api/v1alpha1/index.ts";

export const ANNOTATION_STEP_TIMEOUT = "agentry.dev/step-timeout";
/** Longest wait between two looks at a running Job whose steps have time limits. */
export const STEP_CHECK_MAX_MS = 10_000;

export interface ContainerStatusView {
  name: string;
  state?: { running?: { startedAt?: string } };
}

export interface StepPodView {
  status?: {
    phase?: string;
    initContainerStatuses?: ContainerStatusView[];
    containerStatuses?: ContainerStatusView[];
  };
}

export interface StepTimeoutVerdict {
  /** The first step found running past its limit, with the message for the run's failure. */
  overdue?: { step: string; timeoutSeconds: number; runningSeconds: number; message: string };
  /** When to look again (ms): the nearest limit of a running step, at most STEP_CHECK_MAX_MS. */
  nextCheckMs: number;
}

/** The image steps that carry a time limit, by container name (= step name). */
export function timedSteps(steps: PipelineStep[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of steps) if (s.image && s.timeoutSeconds !== undefined) out.set(s.name, s.timeoutSeconds);
  return out;
}

export function checkStepTimeouts(
  limits: Map<string, number>,
  pods: StepPodView[],
  now: Date,
): StepTimeoutVerdict {
  let nextCheckMs = STEP_CHECK_MAX_MS;
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") continue;
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    for (const c of statuses) {
      const limit = limits.get(c.name);
      const started = Date.parse(c.state?.running?.startedAt ?? "");
      if (limit === undefined || Number.isNaN(started)) continue;
      const runningMs = now.getTime() - started;
      if (runningMs > limit * 1000) {
        const runningSeconds = Math.floor(runningMs / 1000);
        return {
          overdue: {
            step: c.name,
            timeoutSeconds: limit,
            runningSeconds,
            message: `step "${c.name}" ran ${runningSeconds} s, longer than its timeoutSeconds (${limit} s); the run was stopped`,
          },
          nextCheckMs,
        };
      }
      nextCheckMs = Math.min(nextCheckMs, limit * 1000 - runningMs + 100);
    }
  }
  return { nextCheckMs: Math.max(100, nextCheckMs) };
}

/** activeDeadlineSeconds that ends a Job started at `startTime` now (never raises one already set). */
export function deadlineNow(startTime: string | undefined, current: number | undefined, now: Date): number {
  const started = Date.parse(startTime ?? "");
  const elapsed = Number.isNaN(started) ? 1 : Math.max(1, Math.floor((now.getTime() - started) / 1000));
  return current === undefined ? elapsed : Math.min(current, elapsed);
}
