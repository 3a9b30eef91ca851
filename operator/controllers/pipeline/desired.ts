// The objects a Pipeline should have, as a pure function of the Pipeline and the
// AgentRuntimes its steps name: the manifest ConfigMap, and either a CronJob (cron
// schedule) or a one-shot Job (`""`/`@once`), plus the Job of a run-now request. Nothing
// time-dependent goes in, so an unchanged Pipeline yields the same objects and hashes.
import type { EnvVar, Pipeline, PipelineStep } from "../../../api/v1alpha1/index.ts";
import { ANNOTATION_PIPELINE_ID, LABEL_PIPELINE, ONCE_SCHEDULES } from "../../../api/v1alpha1/index.ts";
import { StepEnv } from "../../../contracts/agent.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { childName, shortHash } from "../../../lib/kube/names.ts";
import { controllerRef, withSpecHash } from "../../../lib/kube/children.ts";
import { MANAGED_BY } from "../agentruntime/desired.ts";
import { restrictedContainerSecurity, restrictedPodSecurity, tmpMount, tmpVolume } from "../podsecurity.ts";
import { tokenFile, tokenKeys, tokensVolume } from "../trust.desired.ts";

export { ANNOTATION_PIPELINE_ID, LABEL_PIPELINE };
export const ANNOTATION_PIPELINE_NAME = "agentry.dev/pipeline-name";
export const ANNOTATION_RESOURCE_KIND = "agentry.dev/resource-kind";
export const ANNOTATION_MANIFEST_HASH = "agentry.dev/manifest-hash";
export const ANNOTATION_RUN_REQUEST = "agentry.dev/run-request";
export const MANIFEST_DIR = "/etc/agentry/pipeline";
export const MANIFEST_FILE = "manifest.json";

export interface PipelineContext {
  /** Image of the container that runs agentRef steps against their AgentRuntime. */
  dispatcherImage: string;
  /** In-cluster URL of each AgentRuntime an agentRef step names, by AgentRuntime name. */
  agentUrls: Record<string, string>;
}

export interface PipelineChildren {
  mode: "CronJob" | "Job";
  configMap: KubeObject;
  configMapName: string;
  /** The CronJob (cron mode) or the one-shot Job (once mode). */
  child: KubeObject;
  childName: string;
  /** Labels, annotations and spec of the Jobs of this pipeline (a CronJob's jobTemplate). */
  jobTemplate: { metadata: KubeObject["metadata"]; spec: Record<string, unknown> };
  manifestHash: string;
}

export const isOnce = (schedule: string): boolean => (ONCE_SCHEDULES as readonly string[]).includes(schedule);

export function pipelineLabels(name: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "agentry-pipeline",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "pipeline",
    "app.kubernetes.io/part-of": "agentry",
    ...MANAGED_BY,
    [LABEL_PIPELINE]: name,
  };
}

/** The manifest the job pod reads: the pipeline name and its steps, in order. */
export function manifestOf(pl: Pipeline): string {
  return `${JSON.stringify({ pipeline: pl.metadata.name, namespace: pl.metadata.namespace, steps: pl.spec.steps }, null, 2)}\n`;
}

function stepContainer(pl: Pipeline, step: PipelineStep, ctx: PipelineContext): Record<string, unknown> {
  const manifestPath = `${MANIFEST_DIR}/${MANIFEST_FILE}`;
  const env: EnvVar[] = [
    { name: StepEnv.PIPELINE, value: pl.metadata.name! },
    { name: StepEnv.STEP, value: step.name },
    { name: StepEnv.MANIFEST, value: manifestPath },
  ];
  if (step.input !== undefined) env.push({ name: StepEnv.STEP_INPUT, value: step.input });
  const common = {
    name: step.name,
    ...(pl.spec.resources ? { resources: pl.spec.resources } : {}),
    volumeMounts: [tmpMount, { name: "manifest", mountPath: MANIFEST_DIR, readOnly: true }],
    securityContext: restrictedContainerSecurity,
  };
  const own = new Set(env.map((e) => e.name));
  if (step.agentRef) {
    const agent = step.agentRef.name;
    env.push({ name: StepEnv.AGENT_URL, value: ctx.agentUrls[agent] ?? "" });
    env.push({ name: StepEnv.AGENT_TOKEN_FILE, value: tokenFile(agent) });
    const set = new Set([StepEnv.AGENT_URL, StepEnv.AGENT_TOKEN_FILE] as string[]);
    return {
      ...common,
      volumeMounts: [...common.volumeMounts, agentTokens(pl)!.mount],
      image: ctx.dispatcherImage,
      args: ["dispatch", "--manifest", manifestPath, "--step", step.name],
      env: [...env, ...(step.env ?? []).filter((e) => !own.has(e.name) && !set.has(e.name))],
    };
  }
  return {
    ...common,
    image: step.image,
    ...(step.command ? { command: step.command } : {}),
    ...(step.args ? { args: step.args } : {}),
    env: [...env, ...(step.env ?? []).filter((e) => !own.has(e.name))],
  };
}

/**
 * The tokens of the AgentRuntimes the steps name (one file per agent, named after it), from
 * the namespace's tokens Secret; undefined when no step names one.
 */
function agentTokens(pl: Pipeline) {
  const agents = [...new Set(pl.spec.steps.flatMap((s) => (s.agentRef ? [s.agentRef.name] : [])))].sort();
  if (!agents.length) return undefined;
  return tokensVolume(agents.map((a) => ({ key: tokenKeys.agent(a), path: a })));
}

/** The spec of every Job of the pipeline: steps in order as initContainers, the last as the main container. */
function jobTemplateOf(
  pl: Pipeline,
  ctx: PipelineContext,
  configMapName: string,
  manifestHash: string,
): PipelineChildren["jobTemplate"] {
  const name = pl.metadata.name!;
  const spec = pl.spec;
  const labels = pipelineLabels(name);
  const annotations = {
    [ANNOTATION_PIPELINE_NAME]: name,
    [ANNOTATION_RESOURCE_KIND]: "Pipeline",
    [ANNOTATION_PIPELINE_ID]: pl.metadata.uid!,
  };
  const containers = spec.steps.map((s) => stepContainer(pl, s, ctx));
  const main = containers.pop()!;
  const podSpec = {
    ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
    automountServiceAccountToken: Boolean(spec.serviceAccountName),
    enableServiceLinks: false,
    restartPolicy: "Never",
    securityContext: restrictedPodSecurity,
    ...(containers.length ? { initContainers: containers } : {}),
    containers: [main],
    volumes: [
      tmpVolume,
      { name: "manifest", configMap: { name: configMapName } },
      ...(agentTokens(pl) ? [agentTokens(pl)!.volume] : []),
    ],
  };
  return {
    metadata: { labels, annotations },
    spec: {
      backoffLimit: spec.backoffLimit,
      ...(spec.activeDeadlineSeconds !== undefined
        ? { activeDeadlineSeconds: spec.activeDeadlineSeconds }
        : {}),
      template: {
        metadata: {
          labels: { ...spec.podMetadata?.labels, ...labels },
          annotations: {
            ...spec.podMetadata?.annotations,
            ...annotations,
            // A changed manifest changes the template, so the next run mounts the new one.
            [ANNOTATION_MANIFEST_HASH]: manifestHash,
          },
        },
        spec: podSpec,
      },
    },
  };
}

export function desiredPipeline(pl: Pipeline, ctx: PipelineContext): PipelineChildren {
  const name = pl.metadata.name!;
  const namespace = pl.metadata.namespace!;
  const spec = pl.spec;
  const owner = [controllerRef(pl)];
  const labels = pipelineLabels(name);
  const configMapName = childName(name, "manifest");
  const manifest = manifestOf(pl);
  const manifestHash = shortHash(manifest);
  const jobTemplate = jobTemplateOf(pl, ctx, configMapName, manifestHash);
  const childMeta = { labels, annotations: jobTemplate.metadata.annotations, ownerReferences: owner };

  const configMap = withSpecHash({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: configMapName, namespace, ...childMeta },
    data: { [MANIFEST_FILE]: manifest },
  });

  if (isOnce(spec.schedule)) {
    // The name carries a hash of the Job's spec: a changed spec is a new run.
    const jobName = childName(name, shortHash(jobTemplate, 8));
    const job = withSpecHash({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: jobName, namespace, ...childMeta },
      spec: jobTemplate.spec,
    });
    return {
      mode: "Job",
      configMap,
      configMapName,
      child: job,
      childName: jobName,
      jobTemplate,
      manifestHash,
    };
  }

  const cronJobName = childName(name);
  const cronJob = withSpecHash({
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name: cronJobName, namespace, ...childMeta },
    spec: {
      schedule: spec.schedule,
      ...(spec.timeZone ? { timeZone: spec.timeZone } : {}),
      suspend: spec.suspended,
      concurrencyPolicy: spec.concurrencyPolicy,
      ...(spec.startingDeadlineSeconds !== undefined
        ? { startingDeadlineSeconds: spec.startingDeadlineSeconds }
        : {}),
      successfulJobsHistoryLimit: spec.successfulRunsHistoryLimit,
      failedJobsHistoryLimit: spec.failedRunsHistoryLimit,
      jobTemplate,
    },
  });
  return {
    mode: "CronJob",
    configMap,
    configMapName,
    child: cronJob,
    childName: cronJobName,
    jobTemplate,
    manifestHash,
  };
}

/** Name of the Job of a run-now request: stable per request id, so a repeated request makes no second run. */
export const runJobName = (pipeline: string, requestId: string): string =>
  childName(pipeline, `run-${shortHash(requestId, 8)}`);

/**
 * The Job of a run-now request, made from the pipeline's job template like
 * `kubectl create job --from=cronjob`: owned by the CronJob (cron mode, so its history
 * limits and concurrency apply) or by the Pipeline (once mode).
 */
export function runNowJob(
  pl: Pipeline,
  children: PipelineChildren,
  requestId: string,
  owner: Parameters<typeof controllerRef>[0],
): KubeObject {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: runJobName(pl.metadata.name!, requestId),
      namespace: pl.metadata.namespace!,
      labels: children.jobTemplate.metadata.labels!,
      annotations: {
        ...children.jobTemplate.metadata.annotations,
        [ANNOTATION_RUN_REQUEST]: requestId,
        "cronjob.kubernetes.io/instantiate": "manual",
      },
      ownerReferences: [controllerRef(owner)],
    },
    spec: structuredClone(children.jobTemplate.spec),
  };
}
