// Which Pipelines a change in the cache concerns: the Pipeline itself (on spec, run-now and
// deletion changes; not for our own status writes), the owner a child names by label
// (CronJob, Job, manifest ConfigMap), and the Pipelines whose steps name an AgentRuntime
// whose endpoint changed. The indexes that answer these without scanning a namespace are
// kept here too.
import type { AgentRuntime, Pipeline } from "../../../api/v1alpha1/index.ts";
import { RUN_NOW_ANNOTATION } from "../../../api/v1alpha1/index.ts";
import { CacheIndex, inNamespace } from "../../../lib/kube/cacheindex.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import type { Controller } from "../../../lib/kube/controller.ts";
import { Lane } from "../../../lib/kube/queue.ts";
import { keyOf, type SharedInformer } from "../../../lib/kube/informer.ts";
import type { TypedInformer } from "../../../lib/kube/typed.ts";
import { LABEL_PIPELINE } from "./desired.ts";

export interface PipelineInformers {
  pipelines: TypedInformer<"Pipeline">;
  agents: TypedInformer<"AgentRuntime">;
  cronJobs: SharedInformer<KubeObject>;
  jobs: SharedInformer<KubeObject>;
  configMaps: SharedInformer<KubeObject>;
}

/** The caches' indexes the Pipeline controller reads instead of scanning a namespace. */
export interface PipelineIndexes {
  /** Jobs and CronJobs by `<namespace>/<Pipeline name>` (their label). */
  jobs: CacheIndex<KubeObject>;
  cronJobs: CacheIndex<KubeObject>;
  /** Pipelines by `<namespace>/<AgentRuntime name>` their steps name. */
  pipelinesByAgent: CacheIndex<Pipeline>;
}

export function pipelineIndexes(informers: PipelineInformers): PipelineIndexes {
  const byPipeline = (o: KubeObject) => inNamespace(o, o.metadata.labels?.[LABEL_PIPELINE]);
  return {
    jobs: new CacheIndex(informers.jobs, byPipeline),
    cronJobs: new CacheIndex(informers.cronJobs, byPipeline),
    pipelinesByAgent: new CacheIndex(informers.pipelines, (p) => [
      ...new Set(p.spec.steps.flatMap((s) => inNamespace(p, s.agentRef?.name))),
    ]),
  };
}

/** Wires informer events to the controller's queue. */
export function registerWatches(
  informers: PipelineInformers,
  indexes: PipelineIndexes,
  controller: Controller,
): void {
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
    for (const p of indexes.pipelinesByAgent.get(keyOf(agent))) enqueue(p);
  };
  informers.agents.on("add", enqueueUsers);
  informers.agents.on("update", (o, old) => {
    const endpoint = (a?: AgentRuntime) => a?.status?.endpoint;
    if (endpoint(o) !== endpoint(old)) enqueueUsers(o);
  });
  informers.agents.on("delete", enqueueUsers);
}

/** Enqueues every Pipeline (a full resync). */
export function resyncAll(informers: PipelineInformers, controller: Controller): void {
  for (const p of informers.pipelines.list()) controller.enqueue(keyOf(p));
}
