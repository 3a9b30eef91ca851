// Which Pipelines a change in the cache concerns: the Pipeline itself (on spec, run-now and
// deletion changes; not for our own status writes), the owner a child names by label
// (CronJob, Job, manifest ConfigMap), and the Pipelines whose steps name an AgentRuntime
// whose endpoint changed. The indexes that answer these without scanning a namespace are
// kept here too.
import type { AgentRuntime, Pipeline } from "../../../api/v1alpha1/index.ts";
import { RUN_NOW_ANNOTATION } from "../../../api/v1alpha1/index.ts";
import { CacheIndex, inNamespace } from "../../../lib/kube/cacheindex.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { keyOf, type SharedInformer } from "../../../lib/kube/informer.ts";
import type { TypedInformer } from "../../../lib/kube/typed.ts";
import { specOrDeletion, watchChildren, watchOwn, type Watches } from "../../../lib/kube/watches.ts";
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

/** What the Pipeline controller watches (see the top of this file). */
export function pipelineWatches(informers: PipelineInformers, indexes: PipelineIndexes): Watches {
  return {
    register(controller) {
      // Our own status writes need no reconcile; spec, run-now and deletion changes do.
      const runNow = (o: Pipeline) => o.metadata.annotations?.[RUN_NOW_ANNOTATION];
      watchOwn(
        informers.pipelines,
        controller,
        (o, old) => specOrDeletion(o, old) || runNow(o) !== runNow(old),
      );
      watchChildren([informers.cronJobs, informers.jobs, informers.configMaps], controller, LABEL_PIPELINE);
      const enqueueUsers = (agent: AgentRuntime) => {
        for (const p of indexes.pipelinesByAgent.get(keyOf(agent))) controller.enqueue(keyOf(p));
      };
      informers.agents.on("add", enqueueUsers);
      informers.agents.on("update", (o, old) => {
        const endpoint = (a?: AgentRuntime) => a?.status?.endpoint;
        if (endpoint(o) !== endpoint(old)) enqueueUsers(o);
      });
      informers.agents.on("delete", enqueueUsers);
    },
    /** Every Pipeline. */
    resync(controller) {
      for (const p of informers.pipelines.list()) controller.enqueue(keyOf(p));
    },
  };
}
