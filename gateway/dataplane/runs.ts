// A Pipeline's runs through the gateway, mounted at /v1/namespaces/{ns}/pipelines:
//
//   GET {name}/runs                 RunList: the pipeline's Jobs, newest first, with status
//                                   and pods. As the caller: it needs get on the Pipeline
//                                   and list on jobs and pods (the built-in view role has them).
//   GET {name}/runs/{run}/logs      the log of the run's pod (the newest, or ?pod=), streamed
//                                   as text through the apiserver's pod log API, as the caller:
//                                   `get pipelines/logs` (SubjectAccessReview) and the
//                                   apiserver's own `get pods/log`. ?follow=true streams until
//                                   the container ends; also container, tailLines, sinceSeconds,
//                                   timestamps, previous.
//
// A run is one of the pipeline's Jobs: labelled agentry.dev/pipeline=<name> and annotated
// with the Pipeline's uid, so a Job of a deleted pipeline of the same name is not shown.
import { ApiError } from "../../lib/kube/client.ts";
import { Router } from "express";
import { ANNOTATION_PIPELINE_ID, LABEL_PIPELINE, PipelineKind } from "../../api/v1alpha1/index.ts";
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { asCaller } from "../routes/resources.ts";
import { problemOf } from "../problem.ts";
import { allow, audited, clientGone, type DataPlaneDeps, params, pipeTo, queryOne } from "./common.ts";

type Job = KubeObject & {
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
};
type ContainerStatus = { name: string; lastState?: { terminated?: object } };
type Pod = KubeObject & {
  spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] };
  status?: {
    phase?: string;
    startTime?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
};

export interface Run {
  name: string;
  job: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  reason?: string;
  message?: string;
  startTime?: string;
  completionTime?: string;
  pods: { name: string; phase: string; containers: string[] }[];
}

/** A Job's run phase from its conditions and counts. */
export function runPhase(job: Job): Pick<Run, "phase" | "reason" | "message"> {
  const cond = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === "True");
  const failed = cond("Failed");
  if (failed)
    return {
      phase: "Failed",
      ...(failed.reason ? { reason: failed.reason } : {}),
      ...(failed.message ? { message: failed.message } : {}),
    };
  if (cond("Complete")) return { phase: "Succeeded" };
  if ((job.status?.active ?? 0) > 0) return { phase: "Running" };
  return { phase: "Pending" };
}

const RUN_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LOG_FLAGS = ["follow", "timestamps", "previous"] as const;

async function pipelineUid(client: KubeClient, namespace: string, name: string): Promise<string> {
  const pl = await client.get<KubeObject>(PipelineKind.apiVersion, PipelineKind.kind, namespace, name);
  return pl.metadata.uid ?? "";
}

async function runsOf(client: KubeClient, namespace: string, name: string, uid: string): Promise<Job[]> {
  const jobs = await client.list<Job>("batch/v1", "Job", namespace, {
    labelSelector: `${LABEL_PIPELINE}=${name}`,
  });
  return jobs.items
    .filter((j) => j.metadata.annotations?.[ANNOTATION_PIPELINE_ID] === uid)
    .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""));
}

async function podsOf(client: KubeClient, namespace: string, job: Job): Promise<Pod[]> {
  const pods = await client.list<Pod>("v1", "Pod", namespace, {
    labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata.uid}`,
  });
  return pods.items.sort((a, b) =>
    (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
  );
}

export function runsDataRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });

  // OPTIONS (and other methods) on the runs path go on to the run-now router, whose answer
  // names every method of the path (GET here, POST there); Express would answer "GET" alone.
  router.options("/:name/runs", (_req, _res, next) => next("router"));
  router.get("/:name/runs", async (req, res) => {
    const { namespace, name } = params(req);
    const client = asCaller(deps.kube, res);
    await audited(deps, req, res, { verb: "runs.list", kind: "Pipeline", namespace, name }, async () => {
      const uid = await pipelineUid(client, namespace, name);
      const jobs = await runsOf(client, namespace, name, uid);
      const pods = await client.list<Pod>("v1", "Pod", namespace, {
        labelSelector: `${LABEL_PIPELINE}=${name}`,
      });
      const items: Run[] = jobs.map((job) => ({
        name: job.metadata.name!,
        job: job.metadata.name!,
        ...runPhase(job),
        ...(job.status?.startTime ? { startTime: job.status.startTime } : {}),
        ...(job.status?.completionTime ? { completionTime: job.status.completionTime } : {}),
        pods: pods.items
          .filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === job.metadata.uid))
          .map((p) => ({
            name: p.metadata.name!,
            phase: p.status?.phase ?? "Unknown",
            containers: (p.spec?.containers ?? []).map((c) => c.name),
          })),
      }));
      res.json({ items });
    });
  });

  router.get("/:name/runs/:run/logs", async (req, res) => {
    const { namespace, name } = params(req);
    const run = String(req.params.run);
    if (!RUN_NAME.test(run) || run.length > 63)
      throw problemOf(400, `run "${run.slice(0, 64)}" is not a Job name`);
    const query: Record<string, string> = {};
    for (const flag of LOG_FLAGS) {
      const v = queryOne(req, flag);
      if (v === undefined) continue;
      if (v !== "true" && v !== "false")
        throw problemOf(400, `query parameter ${flag} must be true or false`);
      query[flag] = v;
    }
    for (const n of ["tailLines", "sinceSeconds", "limitBytes"]) {
      const v = queryOne(req, n);
      if (v === undefined) continue;
      if (!/^\d{1,10}$/.test(v)) throw problemOf(400, `query parameter ${n} must be a non-negative integer`);
      // The apiserver refuses 0 for these two with a 422; say it here, as the document does.
      if (n !== "tailLines" && Number(v) === 0)
        throw problemOf(400, `query parameter ${n} must be at least 1`);
      query[n] = v;
    }
    const container = queryOne(req, "container");
    if (container !== undefined) {
      if (!RUN_NAME.test(container))
        throw problemOf(400, "query parameter container must be a container name");
      query.container = container;
    }
    const podName = queryOne(req, "pod");
    if (podName !== undefined && !RUN_NAME.test(podName))
      throw problemOf(400, "query parameter pod must be a pod name");
    await allow(deps, res, { verb: "get", resource: "pipelines", subresource: "logs", namespace, name });
    const client = asCaller(deps.kube, res);
    await audited(deps, req, res, { verb: "logs", kind: "Pipeline", namespace, name }, async (note) => {
      note(`run=${run}`);
      const uid = await pipelineUid(client, namespace, name);
      const job = (await runsOf(client, namespace, name, uid)).find((j) => j.metadata.name === run);
      if (!job) throw problemOf(404, `Pipeline ${namespace}/${name} has no run ${run}`);
      const pods = await podsOf(client, namespace, job);
      const pod = podName ? pods.find((p) => p.metadata.name === podName) : pods[0];
      if (!pod)
        throw problemOf(
          podName ? 404 : 409,
          podName ? `run ${run} has no pod ${podName}` : `run ${run} has no pod (yet, or any more)`,
        );
      note(`pod=${pod.metadata.name}`);
      const missing = missingLog(pod, container, query.previous === "true");
      if (missing) throw problemOf(404, `run ${run}: ${missing}`);
      const answer = await client
        .stream(
          "GET",
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod.metadata.name!)}/log`,
          { query, signal: clientGone(res) },
        )
        .catch((err: unknown) => {
          // previous=true for a container that never restarted: there is no such log (the
          // apiserver says 400, which names nothing wrong with the request).
          if (
            err instanceof ApiError &&
            err.status === 400 &&
            /previous terminated container/.test(err.message)
          )
            throw problemOf(404, `run ${run}: ${err.message}`);
          throw err;
        });
      res.status(200);
      res.setHeader("content-type", "text/plain; charset=utf-8");
      res.setHeader("cache-control", "no-store");
      res.setHeader("x-content-type-options", "nosniff");
      res.setHeader("x-run-pod", pod.metadata.name!);
      res.flushHeaders();
      try {
        await pipeTo(answer.body as unknown as AsyncIterable<Uint8Array>, res);
      } catch {
        return void res.destroy();
      }
      res.end();
    });
  });

  return router;
}

/**
 * Why pod has no such log, before asking the apiserver (which says 400 for both, as if the
 * request were malformed): a container the pod does not have, or the previous instance of
 * a container that never restarted.
 */
export function missingLog(pod: Pod, container: string | undefined, previous: boolean): string | undefined {
  const spec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  if (container !== undefined && !spec.some((c) => c.name === container))
    return `pod ${pod.metadata.name} has no container ${container}`;
  if (!previous) return undefined;
  const target =
    container ??
    pod.metadata.annotations?.["kubectl.kubernetes.io/default-container"] ??
    (pod.spec?.containers?.length === 1 ? pod.spec.containers[0]!.name : undefined);
  if (target === undefined) return undefined;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const status = statuses.find((s) => s.name === target);
  return status?.lastState?.terminated
    ? undefined
    : `container ${target} of pod ${pod.metadata.name} has not restarted: it has no previous log`;
}
