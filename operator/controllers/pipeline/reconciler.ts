// The Pipeline controller: keeps the manifest ConfigMap and either a CronJob (cron
// schedule) or a one-shot Job (`""`/`@once`) per Pipeline, removes the child of the other
// mode, starts run-now Jobs, and reports runs and failures in status. Reconcile order:
// get → stop if gone → gather inputs (AgentRuntimes) → children (ConfigMap → CronJob/Job
// → stale children → run-now) → status if changed. Deleting a Pipeline leaves the rest to
// garbage collection through owner references.
import type { AgentRuntime, Pipeline } from "../../../api/v1alpha1/index.ts";
import { RUN_NOW_ANNOTATION } from "../../../api/v1alpha1/index.ts";
import {
  ChildWriter,
  NAME_CONFLICT_RECHECK_MS,
  NameConflictError,
  controlledBy,
  isNameConflict,
} from "../../../lib/kube/children.ts";
import { CacheIndex, inNamespace } from "../../../lib/kube/cacheindex.ts";
import type { KubeClient, KubeObject } from "../../../lib/kube/client.ts";
import type { Controller, Reconciler } from "../../../lib/kube/controller.ts";
import { Lane } from "../../../lib/kube/queue.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import type { TypedInformer } from "../../../lib/kube/typed.ts";
import { keyOf, splitKey, type SharedInformer } from "../../../lib/kube/informer.ts";
import { childName } from "../../../lib/kube/names.ts";
import type { Logger } from "../../../lib/log.ts";
import type { Metrics } from "../../../lib/kube/metrics.ts";
import {
  ANNOTATION_PIPELINE_ID,
  ANNOTATION_RUN_REQUEST,
  LABEL_PIPELINE,
  desiredPipeline,
  runNowJob,
  type PipelineChildren,
} from "./desired.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";
import { computePipelineStatus, runOf, unexplainedFailures, type JobView } from "./status.ts";
import {
  ANNOTATION_STEP_TIMEOUT,
  checkStepTimeouts,
  deadlineNow,
  timedSteps,
  type StepPodView,
} from "./timeouts.ts";
import type { ReconcileResult } from "../../../lib/kube/controller.ts";
import { errorMessage } from "../../../lib/log.ts";

export const PIPELINE_CHILD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_PIPELINE}`;

export interface PipelineInformers {
  pipelines: TypedInformer<"Pipeline">;
  agents: TypedInformer<"AgentRuntime">;
  cronJobs: SharedInformer<KubeObject>;
  jobs: SharedInformer<KubeObject>;
  configMaps: SharedInformer<KubeObject>;
}

export interface PipelineControllerDeps {
  client: KubeClient;
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

interface PodView {
  metadata: { creationTimestamp?: string };
  status?: {
    phase?: string;
    message?: string;
    reason?: string;
    containerStatuses?: { state?: { terminated?: { exitCode?: number; message?: string } } }[];
  };
}

const errorText = (err: unknown) => errorMessage(err);

export class PipelineReconciler implements Reconciler {
  readonly name = "pipeline";
  readonly latestPassDecides = true;
  private readonly deps: PipelineControllerDeps;
  private readonly writer: ChildWriter;
  private readonly now: () => Date;
  private readonly stallAfterMs: number;
  /** Jobs and CronJobs by `<namespace>/<Pipeline name>` (their label): a Pipeline's children without a scan. */
  private readonly jobsByPipeline: CacheIndex<KubeObject>;
  private readonly cronJobsByPipeline: CacheIndex<KubeObject>;
  /** Pipelines by `<namespace>/<AgentRuntime name>` their steps name. */
  private readonly pipelinesByAgent: CacheIndex<Pipeline>;

  constructor(deps: PipelineControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name, () => this.now().getTime());
    this.stallAfterMs = deps.stallAfterMs ?? STALL_AFTER_MS;
    const { informers } = deps;
    // Expectations: a pass before the watch event of its own write writes nothing.
    this.writer.track("Pipeline", informers.pipelines);
    this.writer.track("ConfigMap", informers.configMaps);
    this.writer.track("CronJob", informers.cronJobs);
    this.writer.track("Job", informers.jobs);
    const byPipeline = (o: KubeObject) => inNamespace(o, o.metadata.labels?.[LABEL_PIPELINE]);
    this.jobsByPipeline = new CacheIndex(informers.jobs, byPipeline);
    this.cronJobsByPipeline = new CacheIndex(informers.cronJobs, byPipeline);
    this.pipelinesByAgent = new CacheIndex(informers.pipelines, (p) => [
      ...new Set(p.spec.steps.flatMap((s) => inNamespace(p, s.agentRef?.name))),
    ]);
  }

  /** Wires informer events to the controller's queue. */
  register(controller: Controller): void {
    const { informers } = this.deps;
    const enqueue = (o: Pick<KubeObject, "metadata">) => controller.enqueue(keyOf(o));
    informers.pipelines.on("add", enqueue);
    informers.pipelines.on("update", (o, old) => {
      // Our own status writes need no reconcile; spec, run-now and deletion changes do.
      const same =
        old &&
        old.metadata.generation === o.metadata.generation &&
        old.metadata.annotations?.[RUN_NOW_ANNOTATION] === o.metadata.annotations?.[RUN_NOW_ANNOTATION] &&
        old.metadata.deletionTimestamp === o.metadata.deletionTimestamp;
      if (!same) enqueue(o);
    });
    informers.pipelines.on("delete", enqueue);
    // A child's event is work under way: served before the first passes of new Pipelines.
    const enqueueOwner = (o: KubeObject) => {
      const pipeline = o.metadata.labels?.[LABEL_PIPELINE];
      if (pipeline && o.metadata.namespace)
        controller.enqueue(`${o.metadata.namespace}/${pipeline}`, Lane.Children);
    };
    for (const inf of [informers.cronJobs, informers.jobs, informers.configMaps]) {
      inf.on("add", enqueueOwner);
      inf.on("update", enqueueOwner);
      inf.on("delete", enqueueOwner);
    }
    const enqueueUsers = (agent: AgentRuntime) => {
      for (const p of this.pipelinesByAgent.get(keyOf(agent))) enqueue(p);
    };
    informers.agents.on("add", enqueueUsers);
    informers.agents.on("update", (o, old) => {
      const endpoint = (a?: AgentRuntime) => a?.status?.endpoint;
      if (endpoint(o) !== endpoint(old)) enqueueUsers(o);
    });
    informers.agents.on("delete", enqueueUsers);
  }

  /** Enqueues every Pipeline (a full resync). */
  resync(controller: Controller): void {
    for (const p of this.deps.informers.pipelines.list()) controller.enqueue(keyOf(p));
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const { informers } = this.deps;
    // Absent, being deleted, or not parsing (reported by the informer): nothing to do.
    const pl = informers.pipelines.get(namespace, name);
    if (!pl || pl.metadata.deletionTimestamp) return;

    const { agentUrls, agentProblem } = this.agentsOf(pl);
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
      else reconcileError = `could not update child objects: ${errorText(err)}`;
    }
    if (nameConflict) this.deps.recorder.event(pl, "Warning", "NameConflict", nameConflict);

    const ownJobs = this.jobsByPipeline
      .get(key)
      .filter(
        (j) =>
          j.metadata.annotations?.[ANNOTATION_PIPELINE_ID] === pl.metadata.uid &&
          !j.metadata.deletionTimestamp,
      );
    const nextStepCheckMs = await this.enforceStepTimeouts(pl, ownJobs);
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
        podMessages: await this.podMessages(namespace, unexplainedFailures(pl.status, jobs), ownJobs),
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

  /**
   * Stops runs whose image step has run past its timeoutSeconds (see timeouts.ts):
   * the Job gets the reason as an annotation and an activeDeadlineSeconds already passed.
   * Returns when to look again while a run with timed steps is still going.
   */
  private async enforceStepTimeouts(pl: Pipeline, jobs: KubeObject[]): Promise<number | undefined> {
    const limits = timedSteps(pl.spec.steps);
    if (limits.size === 0) return undefined;
    let next: number | undefined;
    for (const job of jobs) {
      const view = job as unknown as JobView & { spec?: { activeDeadlineSeconds?: number } };
      if (runOf(view).result !== "Running" || job.metadata.annotations?.[ANNOTATION_STEP_TIMEOUT]) continue;
      const name = job.metadata.name!;
      let pods: StepPodView[];
      try {
        pods = await this.jobPods<StepPodView>(pl.metadata.namespace, name);
      } catch (err) {
        this.deps.log.debug("could not read the pods of a running Job", { job: name, error: errorText(err) });
        next = Math.min(next ?? Infinity, 5000);
        continue;
      }
      const now = this.now();
      const verdict = checkStepTimeouts(limits, pods, now);
      next = Math.min(next ?? Infinity, verdict.nextCheckMs);
      const overdue = verdict.overdue;
      if (!overdue) continue;
      await this.writer.write("Job", "patch", () =>
        this.deps.client.mergePatch(
          { apiVersion: "batch/v1", kind: "Job", metadata: { namespace: pl.metadata.namespace, name } },
          {
            metadata: { annotations: { [ANNOTATION_STEP_TIMEOUT]: overdue.message } },
            spec: {
              activeDeadlineSeconds: deadlineNow(
                view.status?.startTime,
                view.spec?.activeDeadlineSeconds,
                now,
              ),
            },
          },
        ),
      );
      this.deps.recorder.event(pl, "Warning", "StepTimedOut", `Job ${name}: ${overdue.message}`);
    }
    return next;
  }

  /** In-cluster URLs of the AgentRuntimes the steps name, or what is missing. */
  private agentsOf(pl: Pipeline): { agentUrls: Record<string, string>; agentProblem?: string } {
    const agentUrls: Record<string, string> = {};
    const missing: string[] = [];
    for (const step of pl.spec.steps) {
      const ref = step.agentRef?.name;
      if (!ref) continue;
      const agent = this.deps.informers.agents.get(pl.metadata.namespace, ref);
      if (!agent) {
        missing.push(`${ref} (step ${step.name})`);
        continue;
      }
      agentUrls[ref] =
        agent.status?.endpoint ??
        `http://${childName(ref)}.${pl.metadata.namespace}.svc:${agent.spec.port ?? 8080}`;
    }
    if (!missing.length) return { agentUrls };
    return {
      agentUrls,
      agentProblem: `AgentRuntime ${missing.join(", ")} does not exist in namespace ${pl.metadata.namespace}; create it or fix spec.steps[].agentRef. No run starts until then`,
    };
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
    const key = keyOf(pl);
    for (const cj of this.cronJobsByPipeline.get(key)) {
      if (
        controlledBy(cj, pl.metadata.uid) &&
        (desired.mode === "Job" || cj.metadata.name !== desired.childName)
      )
        stale.push(cj);
    }
    for (const job of this.jobsByPipeline.get(key)) {
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

  /** The pods a Job made (one list call). */
  private async jobPods<P>(namespace: string | undefined, job: string): Promise<P[]> {
    const list = await this.deps.client.list<KubeObject>("v1", "Pod", namespace, {
      labelSelector: `batch.kubernetes.io/job-name=${job}`,
    });
    return list.items as unknown as P[];
  }

  /** The failure message of each failed Job's newest failed pod (one list per newly failed Job). */
  private async podMessages(
    namespace: string,
    jobNames: string[],
    jobs: KubeObject[],
  ): Promise<Record<string, string>> {
    const messages: Record<string, string> = {};
    for (const job of jobNames) {
      // A run stopped for a step's time limit says so; its pods only say they were killed.
      const timedOut = jobs.find((j) => j.metadata.name === job)?.metadata.annotations?.[
        ANNOTATION_STEP_TIMEOUT
      ];
      if (timedOut) {
        messages[job] = timedOut;
        continue;
      }
      try {
        const pods = await this.jobPods<PodView>(namespace, job);
        const failed = pods
          .filter((p) => p.status?.phase === "Failed")
          .sort((a, b) =>
            (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
          );
        const status = failed[0]?.status;
        const terminated = status?.containerStatuses?.find((c) => c.state?.terminated?.exitCode)?.state
          ?.terminated;
        const message = status?.message ?? terminated?.message ?? status?.reason;
        if (message) messages[job] = message;
      } catch (err) {
        this.deps.log.debug("could not read the pods of a failed Job", { job, error: errorText(err) });
      }
    }
    return messages;
  }
}
