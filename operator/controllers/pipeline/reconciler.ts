// The Pipeline controller: keeps the manifest ConfigMap and either a CronJob (cron
// schedule) or a one-shot Job (`""`/`@once`) per Pipeline, removes the child of the other
// mode, starts run-now Jobs, and reports runs and failures in status. Reconcile order:
// get → stop if gone → gather inputs (AgentRuntimes) → children (ConfigMap → CronJob/Job
// → stale children → run-now) → status if changed. Deleting a Pipeline leaves the rest to
// garbage collection through owner references.
import type { Pipeline } from "../../../api/v1alpha1/index.ts";
import { RUN_NOW_ANNOTATION } from "../../../api/v1alpha1/index.ts";
import {
  ChildWriter,
  NAME_CONFLICT_RECHECK_MS,
  NameConflictError,
  controlledBy,
  isNameConflict,
} from "../../../lib/kube/children.ts";
import type { KubeApi, KubeObject } from "../../../lib/kube/client.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";
import type { ReconcileResult } from "../../../lib/kube/controller.ts";
import type { Watches, WatchingReconciler } from "../../../lib/kube/watches.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { splitKey } from "../../../lib/kube/informer.ts";
import type { Metrics } from "../../../lib/kube/metrics.ts";
import { errorMessage, type Logger } from "../../../lib/log.ts";
import {
  ANNOTATION_PIPELINE_ID,
  ANNOTATION_RUN_REQUEST,
  LABEL_PIPELINE,
  desiredPipeline,
  runNowJob,
  type PipelineChildren,
} from "./desired.ts";
import { agentsOf } from "./inputs.ts";
import { PipelineRuns } from "./runs.ts";
import { computePipelineStatus, unexplainedFailures, type JobView } from "./status.ts";
import { pipelineIndexes, pipelineWatches, type PipelineIndexes, type PipelineInformers } from "./watches.ts";

export type { PipelineInformers } from "./watches.ts";

export const PIPELINE_CHILD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_PIPELINE}`;

export interface PipelineControllerDeps {
  client: KubeApi;
  informers: PipelineInformers;
  recorder: Recorder;
  metrics: Metrics;
  log: Logger;
  /** Image of the container that runs agentRef steps. */
  dispatcherImage: string;
  now?: () => Date;
  /** How long a step's missing AgentRuntime is waited for before Stalled. */
  stallAfterMs?: number;
}

export class PipelineReconciler implements WatchingReconciler {
  readonly name = "pipeline";
  readonly latestPassDecides = true;
  readonly watches: Watches;
  private readonly deps: PipelineControllerDeps;
  private readonly writer: ChildWriter;
  private readonly now: () => Date;
  private readonly stallAfterMs: number;
  private readonly runs: PipelineRuns;
  private readonly indexes: PipelineIndexes;

  constructor(deps: PipelineControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name, () => this.now().getTime());
    const { informers } = deps;
    // Expectations: a pass before the watch event of its own write writes nothing.
    this.writer.track({
      Pipeline: informers.pipelines,
      ConfigMap: informers.configMaps,
      CronJob: informers.cronJobs,
      Job: informers.jobs,
    });
    this.indexes = pipelineIndexes(informers);
    this.watches = pipelineWatches(informers, this.indexes);
    this.stallAfterMs = deps.stallAfterMs ?? STALL_AFTER_MS;
    this.runs = new PipelineRuns({ ...deps, writer: this.writer, now: this.now });
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const { informers } = this.deps;
    // Absent, being deleted, or not parsing (reported by the informer): nothing to do.
    const pl = informers.pipelines.get(namespace, name);
    if (!pl || pl.metadata.deletionTimestamp) return;

    const { agentUrls, agentProblem } = agentsOf(informers, pl);
    const desired = desiredPipeline(pl, { dispatcherImage: this.deps.dispatcherImage, agentUrls });
    let reconcileError: string | undefined;
    let nameConflict: string | undefined;
    let lastRunRequest: string | undefined;
    try {
      await this.writer.ensure(desired.configMap, informers.configMaps.get(namespace, desired.configMapName));
      if (!agentProblem) {
        if (desired.mode === "CronJob") await this.ensureCronJob(pl, desired);
        else await this.ensureOneShot(pl, desired);
      }
      await this.removeStale(pl, desired);
      if (!agentProblem) lastRunRequest = await this.runNow(pl, desired);
    } catch (err) {
      // A name held by someone else's object: leave it alone, say so, look again later.
      if (isNameConflict(err)) nameConflict = err.message;
      else reconcileError = `could not update child objects: ${errorMessage(err)}`;
    }
    if (nameConflict) this.deps.recorder.event(pl, "Warning", "NameConflict", nameConflict);

    const ownJobs = this.indexes.jobs
      .get(key)
      .filter(
        (j) =>
          j.metadata.annotations?.[ANNOTATION_PIPELINE_ID] === pl.metadata.uid &&
          !j.metadata.deletionTimestamp,
      );
    const nextStepCheckMs = await this.runs.enforceStepTimeouts(pl, ownJobs);
    const jobs = ownJobs as unknown as JobView[];
    const child =
      desired.mode === "CronJob"
        ? informers.cronJobs.get(namespace, desired.childName)
        : informers.jobs.get(namespace, desired.childName);
    const cronJobStatus =
      desired.mode === "CronJob" && child
        ? (child["status"] as { lastScheduleTime?: string; lastSuccessfulTime?: string } | undefined)
        : undefined;
    const status = computePipelineStatus(
      pl,
      {
        mode: desired.mode,
        childName: desired.childName,
        childExists: child !== undefined && controlledBy(child, pl.metadata.uid),
        manifestConfigMap: desired.configMapName,
        jobs,
        ...(cronJobStatus ? { cronJobStatus } : {}),
        podMessages: await this.runs.podMessages(namespace, unexplainedFailures(pl.status, jobs), ownJobs),
        ...(lastRunRequest ? { lastRunRequest } : {}),
        ...(agentProblem ? { agentProblem } : {}),
        stallAfterMs: this.stallAfterMs,
        ...(reconcileError ? { reconcileError } : {}),
        ...(nameConflict ? { nameConflict } : {}),
      },
      this.now(),
    );
    const failure = status.lastFailure;
    if (failure && failure.jobName !== pl.status?.lastFailure?.jobName) {
      this.deps.recorder.event(
        pl,
        "Warning",
        "RunFailed",
        `Job ${failure.jobName} failed (${failure.reason})${failure.message ? `: ${failure.message}` : ""}`,
      );
    }
    await this.writer.writeStatus(pl, status, pl.status);
    if (reconcileError) throw new Error(reconcileError);
    const next = Math.min(
      nextStepCheckMs ?? Infinity,
      nameConflict ? NAME_CONFLICT_RECHECK_MS : Infinity,
      // A missing agent stalls past the bound: look again then.
      agentProblem ? this.stallAfterMs : Infinity,
    );
    if (next !== Infinity) return { requeueAfterMs: next };
  }

  private async ensureCronJob(pl: Pipeline, desired: PipelineChildren): Promise<void> {
    const observed = this.deps.informers.cronJobs.get(pl.metadata.namespace, desired.childName);
    if (await this.writer.ensure(desired.child, observed)) {
      const verb = observed ? "Updated" : "Created";
      this.deps.recorder.event(pl, "Normal", verb, `${verb} CronJob ${desired.childName}`);
    }
  }

  /** Creates the one-shot Job unless it exists, already ran (its run is in the history), or the pipeline is suspended. */
  private async ensureOneShot(pl: Pipeline, desired: PipelineChildren): Promise<void> {
    if (pl.spec.suspended) return;
    const existing = this.deps.informers.jobs.get(pl.metadata.namespace, desired.childName);
    if (existing && !controlledBy(existing, pl.metadata.uid))
      throw new NameConflictError(desired.child, existing);
    if (existing) return;
    const ran = pl.status?.history?.some((r) => r.jobName === desired.childName && r.result !== "Running");
    if (ran) return;
    if (await this.writer.create(desired.child)) {
      this.deps.recorder.event(pl, "Normal", "Created", `Created Job ${desired.childName}`);
    }
  }

  /**
   * Removes children of the other mode and one-shot Jobs of an earlier spec: in cron mode
   * every Job the Pipeline owns directly; in once mode the CronJob (its Jobs go with it)
   * and the Pipeline's Jobs other than the current one and run-now Jobs.
   */
  private async removeStale(pl: Pipeline, desired: PipelineChildren): Promise<void> {
    const stale: KubeObject[] = [];
    const key = `${pl.metadata.namespace}/${pl.metadata.name}`;
    for (const cj of this.indexes.cronJobs.get(key)) {
      if (
        controlledBy(cj, pl.metadata.uid) &&
        (desired.mode === "Job" || cj.metadata.name !== desired.childName)
      )
        stale.push(cj);
    }
    for (const job of this.indexes.jobs.get(key)) {
      if (!controlledBy(job, pl.metadata.uid) || job.metadata.deletionTimestamp) continue;
      const current =
        desired.mode === "Job" &&
        (job.metadata.name === desired.childName || job.metadata.annotations?.[ANNOTATION_RUN_REQUEST]);
      if (!current) stale.push(job);
    }
    for (const obj of stale) {
      if (obj.metadata.deletionTimestamp) continue;
      await this.writer.remove(obj);
      const why = obj.kind === "CronJob" ? "the schedule is now a one-shot run" : "the spec changed";
      this.deps.recorder.event(pl, "Normal", "Deleted", `Deleted ${obj.kind} ${obj.metadata.name}: ${why}`);
    }
  }

  /**
   * Honours the run-now annotation: one Job per request id, named after it, so repeating
   * the request starts nothing new. Returns the request id once its Job exists.
   */
  private async runNow(pl: Pipeline, desired: PipelineChildren): Promise<string | undefined> {
    const request = pl.metadata.annotations?.[RUN_NOW_ANNOTATION]?.trim().slice(0, 253);
    if (!request || request === pl.status?.lastRunRequest) return undefined;
    const owner =
      desired.mode === "CronJob"
        ? this.deps.informers.cronJobs.get(pl.metadata.namespace, desired.childName)
        : pl;
    // The CronJob is not in the cache yet: its add event brings us back.
    if (!owner?.metadata.uid) return undefined;
    const job = runNowJob(pl, desired, request, owner);
    if (await this.writer.create(job)) {
      this.deps.recorder.event(
        pl,
        "Normal",
        "RunRequested",
        `Started Job ${job.metadata.name} for run-now request ${request}`,
      );
    }
    return request;
  }
}
