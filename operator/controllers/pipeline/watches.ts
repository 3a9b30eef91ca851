// Which Pipelines a change in the cache concerns: the Pipeline itself (on spec, run-now and
// deletion changes; not for our own status writes), the owner a child names by label
// (CronJob, Job, manifest ConfigMap), and the Pipelines whose steps name an AgentRuntime
// whose endpoint changed.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { RUN_NOW_ANNOTATION } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import type { Controller } from "../../../lib/kube/controller.ts";
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

/** Wires informer events to the controller's queue. */
export function registerWatches(informers: PipelineInformers, controller: Controller): void {
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
  const enqueueOwner = (o: KubeObject) => {
    const pipeline = o.metadata.labels?.[LABEL_PIPELINE];
    if (pipeline && o.metadata.namespace) controller.enqueue(`${o.metadata.namespace}/${pipeline}`);
  };
  for (const inf of [informers.cronJobs, informers.jobs, informers.configMaps]) {
    inf.on("add", enqueueOwner);
    inf.on("update", enqueueOwner);
    inf.on("delete", enqueueOwner);
  }
  const enqueueUsers = (agent: AgentRuntime) => {
    for (const p of informers.pipelines.list(agent.metadata.namespace)) {
      if (p.spec.steps.some((s) => s.agentRef?.name === agent.metadata.name)) enqueue(p);
    }
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
