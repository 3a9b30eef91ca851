// The status of a Pipeline as a pure function of what is observed: its Jobs (made by
// the one-shot path, the CronJob or run-now), the CronJob's own status, and problems met
// while reconciling. Runs become the history (newest first), the latest failed Job
// becomes lastFailure, and one Ready condition says what a person should know.
import type { Pipeline, PipelineRun, PipelineStatus } from "../../../api/v1alpha1/index.ts";
import { PipelineReason } from "../../../api/v1alpha1/index.ts";
import {
  mergeConditions,
  type Progress,
  STALL_AFTER_MS,
  standardConditions,
  waitedTooLong,
} from "../../../lib/kube/conditions.ts";

export const HISTORY_LIMIT = 10;

export interface JobView {
  metadata: { name?: string; creationTimestamp?: string };
  status?: {
    startTime?: string;
    completionTime?: string;
    active?: number;
    conditions?: {
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastTransitionTime?: string;
    }[];
  };
}

export interface PipelineObservation {
  mode: "CronJob" | "Job";
  childName: string;
  childExists: boolean;
  manifestConfigMap: string;
  jobs: JobView[];
  cronJobStatus?: { lastScheduleTime?: string; lastSuccessfulTime?: string };
  /** Failure message of a failed Job's pod, by Job name, when one was looked up. */
  podMessages?: Record<string, string>;
  /** The run-now request honoured in this reconcile (or earlier). */
  lastRunRequest?: string;
  /** A step names an AgentRuntime that does not exist. */
  agentProblem?: string;
  /** How long a step's missing AgentRuntime is waited for before Stalled. */
  stallAfterMs?: number;
  /** An error from the last attempt to write children. */
  reconcileError?: string;
  /** A child's name is held by an object the Pipeline does not control (agentry leaves it alone). */
  nameConflict?: string;
}

const condition = (j: JobView, type: string) =>
  j.status?.conditions?.find((c) => c.type === type && c.status === "True");

/** One Job as a run of the pipeline. */
export function runOf(job: JobView, podMessage?: string): PipelineRun {
  const failed = condition(job, "Failed");
  const complete = condition(job, "Complete");
  const startTime = job.status?.startTime ?? job.metadata.creationTimestamp;
  const run: PipelineRun = {
    jobName: job.metadata.name!,
    result: failed ? "Failed" : complete ? "Succeeded" : "Running",
    ...(startTime ? { startTime } : {}),
  };
  const completionTime = complete
    ? (job.status?.completionTime ?? complete.lastTransitionTime)
    : failed?.lastTransitionTime;
  if (completionTime) run.completionTime = completionTime;
  if (failed) {
    run.reason = failed.reason ?? "Failed";
    const message = [failed.message, podMessage].filter(Boolean).join(": ");
    if (message) run.message = message.slice(0, 4096);
  }
  return run;
}

const newestFirst = (a: PipelineRun, b: PipelineRun) =>
  (b.startTime ?? "").localeCompare(a.startTime ?? "") || b.jobName.localeCompare(a.jobName);

const latest = (...times: (string | undefined)[]): string | undefined =>
  times.filter((t): t is string => Boolean(t)).sort((a, b) => Date.parse(b) - Date.parse(a))[0];

/**
 * Runs seen now, plus finished runs remembered from the previous status whose Jobs are
 * gone (removed by history limits or a spec change), newest first.
 */
export function runHistory(previous: PipelineRun[] | undefined, observed: PipelineRun[]): PipelineRun[] {
  const seen = new Set(observed.map((r) => r.jobName));
  const kept = (previous ?? []).filter((r) => !seen.has(r.jobName) && r.result !== "Running");
  return [...observed, ...kept].sort(newestFirst).slice(0, HISTORY_LIMIT);
}

interface Verdict {
  phase: NonNullable<PipelineStatus["phase"]>;
  /** kstatus: Current (Ready), Reconciling (getting there) or Stalled (needs a change). */
  progress: Progress;
  reason: string;
  message: string;
}

/** Finished runs in a row, newest first, that failed before one in a row stalls the Pipeline. */
export const FAILURES_BEFORE_STALLED = 3;

function verdictOf(pl: Pipeline, o: PipelineObservation, history: PipelineRun[], now: Date): Verdict {
  const active = history.filter((r) => r.result === "Running"); // newest first
  const finished = history.find((r) => r.result !== "Running");
  const runningPhase = active.length ? ("Running" as const) : undefined;
  if (o.nameConflict)
    return {
      phase: "Pending",
      progress: "Stalled",
      reason: PipelineReason.NameConflict,
      message: o.nameConflict,
    };
  if (pl.spec.suspended) {
    return {
      phase: "Suspended",
      progress: "Current",
      reason: PipelineReason.Suspended,
      message: "suspended: no new runs start; set spec.suspended=false to resume",
    };
  }
  if (o.agentProblem)
    return {
      phase: "Pending",
      // An AgentRuntime applied together with the Pipeline may simply not exist yet.
      progress: waitedTooLong(pl.metadata.creationTimestamp, now, o.stallAfterMs ?? STALL_AFTER_MS)
        ? "Stalled"
        : "Reconciling",
      reason: PipelineReason.AgentNotFound,
      message: o.agentProblem,
    };
  if (o.reconcileError) {
    return {
      phase: runningPhase ?? "Pending",
      progress: "Reconciling",
      reason: PipelineReason.ReconcileError,
      message: o.reconcileError,
    };
  }
  if (o.mode === "Job" && active.length && active[0] === history[0]) {
    return {
      phase: "Running",
      progress: "Reconciling",
      reason: PipelineReason.Running,
      message: `Job ${active[0]!.jobName} is running`,
    };
  }
  if (finished?.result === "Failed") {
    const finishedRuns = history.filter((r) => r.result !== "Running");
    const failingInARow =
      finishedRuns.length >= FAILURES_BEFORE_STALLED &&
      finishedRuns.slice(0, FAILURES_BEFORE_STALLED).every((r) => r.result === "Failed");
    return {
      phase: runningPhase ?? "Failed",
      // A one-shot run that failed is not retried; a schedule that keeps failing needs a fix.
      // One failed scheduled run may be followed by a good one.
      progress: o.mode === "Job" || failingInARow ? "Stalled" : "Reconciling",
      reason: PipelineReason.RunFailed,
      message: `run ${finished.jobName} failed (${finished.reason})${finished.message ? `: ${finished.message}` : ""}; see kubectl logs job/${finished.jobName} --all-containers`,
    };
  }
  if (o.mode === "Job") {
    if (finished) {
      return {
        phase: "Succeeded",
        progress: "Current",
        reason: PipelineReason.Succeeded,
        message: `run ${finished.jobName} succeeded`,
      };
    }
    return {
      phase: "Pending",
      progress: "Reconciling",
      reason: PipelineReason.Creating,
      message: `creating Job ${o.childName}`,
    };
  }
  if (!o.childExists) {
    return {
      phase: "Pending",
      progress: "Reconciling",
      reason: PipelineReason.Creating,
      message: `creating CronJob ${o.childName}`,
    };
  }
  const runs = active.length ? `; ${active.length} run(s) in progress` : "";
  return {
    phase: runningPhase ?? "Scheduled",
    progress: "Current",
    reason: PipelineReason.Scheduled,
    message: `CronJob ${o.childName} runs on "${pl.spec.schedule}"${pl.spec.timeZone ? ` (${pl.spec.timeZone})` : ""}${runs}`,
  };
}

/** Failed runs the previous status already explained, by Job name. */
function explainedFailures(previous: PipelineStatus | undefined): Map<string, PipelineRun> {
  const runs = [...(previous?.history ?? []), ...(previous?.lastFailure ? [previous.lastFailure] : [])];
  return new Map(runs.filter((r) => r.result === "Failed").map((r) => [r.jobName, r]));
}

/** Failed Jobs whose pod's failure message has not been looked up yet. */
export function unexplainedFailures(previous: PipelineStatus | undefined, jobs: JobView[]): string[] {
  const known = explainedFailures(previous);
  return jobs
    .filter((j) => condition(j, "Failed") && !known.has(j.metadata.name ?? ""))
    .map((j) => j.metadata.name!);
}

export function computePipelineStatus(pl: Pipeline, o: PipelineObservation, now: Date): PipelineStatus {
  const previous = pl.status;
  const known = explainedFailures(previous);
  const observed = o.jobs.map((j) => {
    const name = j.metadata.name ?? "";
    const run = runOf(j, o.podMessages?.[name]);
    const prior = known.get(name);
    // The pod's message was looked up once; keep it rather than ask again.
    if (run.result === "Failed" && !o.podMessages?.[name] && prior?.message) run.message = prior.message;
    return run;
  });
  const history = runHistory(previous?.history, observed);
  const failedRuns = history.filter((r) => r.result === "Failed");
  // A failure may have left the history; the previous lastFailure stays until a newer one.
  const lastFailure = [...failedRuns, ...(previous?.lastFailure ? [previous.lastFailure] : [])].sort(
    newestFirst,
  )[0];
  const lastScheduleTime = latest(
    o.cronJobStatus?.lastScheduleTime,
    history[0]?.startTime,
    previous?.lastScheduleTime,
  );
  const lastSuccessfulTime = latest(
    o.cronJobStatus?.lastSuccessfulTime,
    ...history.filter((r) => r.result === "Succeeded").map((r) => r.completionTime),
    previous?.lastSuccessfulTime,
  );
  const verdict = verdictOf(pl, o, history, now);
  const generation = pl.metadata.generation;
  const conditions = mergeConditions(previous?.conditions, standardConditions(verdict, generation), now);
  const lastRunRequest = o.lastRunRequest ?? previous?.lastRunRequest;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    phase: verdict.phase,
    childKind: o.mode,
    ...(o.childExists ? { childName: o.childName } : {}),
    manifestConfigMap: o.manifestConfigMap,
    active: observed.filter((r) => r.result === "Running").length,
    ...(lastScheduleTime ? { lastScheduleTime } : {}),
    ...(lastSuccessfulTime ? { lastSuccessfulTime } : {}),
    ...(lastFailure ? { lastFailure } : {}),
    ...(history.length ? { history } : {}),
    ...(lastRunRequest ? { lastRunRequest } : {}),
    conditions,
  };
}
