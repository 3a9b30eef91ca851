// The Pipeline controller against the real control plane: kube-controller-manager's job
// and cronjob controllers run the Jobs, kwok completes their pods (or fails them when the
// pod carries kwok.agentry.dev/fail). One operator process watches this file's
// namespaces, each with Pod Security "restricted" enforced.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { PipelineStatus } from "../../api/v1alpha1/index.ts";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, writesAcrossResyncs, type OperatorProcess } from "../harness/operator.ts";

const RESTRICTED = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
};
const GROUP = { group: "agentry.dev", version: "v1alpha1", plural: "pipelines" };
const CHILDREN = "agentry.dev/pipeline";

type PipelineObject = {
  metadata: { name: string; uid: string; generation: number; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
  status?: PipelineStatus;
};

const names = [
  "once",
  "failing",
  "timeout",
  "cron",
  "switch",
  "manifest",
  "cleanup",
  "agents",
  "scheduled",
  "steady",
] as const;
const ns = {} as Record<(typeof names)[number], string>;
let operator: OperatorProcess;
const custom = () => api(k8s.CustomObjectsApi);
const batch = () => api(k8s.BatchV1Api);
const core = () => api(k8s.CoreV1Api);

const step = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  image: "registry.example/tools:1",
  command: ["run", name],
  ...extra,
});

async function createPipeline(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...GROUP,
    namespace,
    body: { apiVersion: "agentry.dev/v1alpha1", kind: "Pipeline", metadata: { name }, spec },
  });
}

const getPipeline = async (namespace: string, name: string) =>
  (await custom().getNamespacedCustomObject({ ...GROUP, namespace, name })) as PipelineObject;

async function patchPipeline(namespace: string, name: string, patch: Record<string, unknown>): Promise<void> {
  const res = await kubectl([
    "patch",
    "pl",
    name,
    "-n",
    namespace,
    "--type=merge",
    "-p",
    JSON.stringify(patch),
  ]);
  assert.equal(res.code, 0, res.stderr);
}

/** The Pipeline once its status describes its current generation and passes `ok`. */
function waitStatus(
  namespace: string,
  name: string,
  what: string,
  ok: (s: PipelineStatus) => boolean,
): Promise<PipelineObject> {
  return waitFor(`${namespace}/${name}: ${what}`, async () => {
    const p = await getPipeline(namespace, name);
    return p.status?.observedGeneration === p.metadata.generation && p.status && ok(p.status) ? p : undefined;
  });
}

const ready = (s: PipelineStatus) => s.conditions?.find((c) => c.type === "Ready");
const jobsOf = async (namespace: string) =>
  (await batch().listNamespacedJob({ namespace, labelSelector: CHILDREN })).items;
const cronJobsOf = async (namespace: string) =>
  (await batch().listNamespacedCronJob({ namespace, labelSelector: CHILDREN })).items;

describe("Pipeline controller", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  before(async () => {
    for (const n of names) ns[n] = await testNamespace({ ...suite, name: `pl-${n}` }, RESTRICTED);
    operator = await startOperator(suite, {
      namespaces: Object.values(ns),
      args: ["--dispatcher-image=registry.example/dispatch:1", "--resync-period=1s"],
    });
    // A real scheduled run takes up to a minute: start it now, check it last.
    await createPipeline(ns.scheduled, "tick", { schedule: "* * * * *", steps: [step("a")] });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("runs a one-shot pipeline as a Job and reports its success", async () => {
    const namespace = ns.once;
    await createPipeline(namespace, "reindex", {
      schedule: "@once",
      steps: [step("fetch", { input: "all repos" }), step("index")],
    });
    const pl = await waitStatus(namespace, "reindex", "Succeeded", (s) => s.phase === "Succeeded");
    const status = pl.status!;
    assert.equal(ready(status)?.status, "True");
    assert.equal(ready(status)?.reason, "Succeeded");
    assert.equal(status.childKind, "Job");
    assert.match(status.childName ?? "", /^reindex-[0-9a-z]{8}$/);
    assert.equal(status.manifestConfigMap, "reindex-manifest");
    assert.equal(status.active, 0);
    assert.ok(status.lastSuccessfulTime, "lastSuccessfulTime");
    assert.deepEqual(
      status.history?.map((r) => [r.jobName, r.result]),
      [[status.childName, "Succeeded"]],
    );

    const job = await batch().readNamespacedJob({ name: status.childName!, namespace });
    assert.equal(job.metadata?.annotations?.["agentry.dev/pipeline-name"], "reindex");
    assert.equal(job.metadata?.annotations?.["agentry.dev/resource-kind"], "Pipeline");
    assert.equal(job.metadata?.ownerReferences?.[0]?.uid, pl.metadata.uid);
    const pod = job.spec?.template.spec;
    assert.deepEqual(
      pod?.initContainers?.map((c) => c.name),
      ["fetch"],
    );
    assert.deepEqual(
      pod?.containers.map((c) => c.name),
      ["index"],
    );
    assert.equal(pod?.restartPolicy, "Never");
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.deepEqual(pod?.volumes?.find((v) => v.name === "manifest")?.configMap?.name, "reindex-manifest");
    const mount = pod?.containers[0]?.volumeMounts?.find((m) => m.name === "manifest");
    assert.equal(mount?.readOnly, true);
    assert.equal(mount?.mountPath, "/etc/agentry/pipeline");

    const cm = await core().readNamespacedConfigMap({ name: "reindex-manifest", namespace });
    assert.equal(cm.metadata?.ownerReferences?.[0]?.uid, pl.metadata.uid);
    assert.equal(cm.metadata?.annotations?.["agentry.dev/pipeline-name"], "reindex");
    const manifest = JSON.parse(cm.data?.["manifest.json"] ?? "{}") as { steps?: { name: string }[] };
    assert.deepEqual(
      manifest.steps?.map((s) => s.name),
      ["fetch", "index"],
    );

    const get = await kubectl(["get", "pl", "reindex", "-n", namespace, "--no-headers"]);
    assert.match(get.stdout, /^reindex\s+@once\s+Job\s+Succeeded\s/);
  });

  it("surfaces a failed run in status, the printer columns and an event", async () => {
    const namespace = ns.failing;
    await createPipeline(namespace, "broken", {
      backoffLimit: 0,
      podMetadata: { annotations: { "kwok.agentry.dev/fail": "model quota exhausted" } },
      steps: [step("work")],
    });
    const pl = await waitStatus(namespace, "broken", "RunFailed", (s) => ready(s)?.reason === "RunFailed");
    const status = pl.status!;
    assert.equal(status.phase, "Failed");
    assert.equal(ready(status)?.status, "False");
    assert.equal(status.lastFailure?.jobName, status.childName);
    assert.equal(status.lastFailure?.reason, "BackoffLimitExceeded");
    assert.match(status.lastFailure?.message ?? "", /model quota exhausted/);
    assert.match(ready(status)?.message ?? "", /BackoffLimitExceeded.*model quota exhausted/);

    const get = await kubectl(["get", "pl", "broken", "-n", namespace]);
    assert.match(get.stdout, /LAST FAILURE/);
    assert.match(get.stdout, /broken\s+Job\s+Failed\s+\S+\s+BackoffLimitExceeded/);
    const events = await core().listNamespacedEvent({ namespace });
    const failed = events.items.find((e) => e.reason === "RunFailed");
    assert.equal(failed?.type, "Warning");

    // Fixing the spec starts a new run and removes the failed Job.
    await patchPipeline(namespace, "broken", { spec: { podMetadata: null } });
    const fixed = await waitStatus(namespace, "broken", "Succeeded", (s) => s.phase === "Succeeded");
    assert.notEqual(fixed.status?.childName, status.childName);
    assert.equal(fixed.status?.lastFailure?.jobName, status.childName, "the last failure is remembered");
    await waitFor("the failed Job deleted", async () => {
      const jobs = await jobsOf(namespace);
      return jobs.length === 1 && jobs[0]?.metadata?.name === fixed.status?.childName;
    });
  });

  it("stops a run whose image step outlives its timeoutSeconds and names the step", async () => {
    const namespace = ns.timeout;
    await createPipeline(namespace, "slow", {
      backoffLimit: 0,
      // kwok leaves the pod's status to the test: the first step (an init container) runs.
      podMetadata: { annotations: { "kwok.agentry.dev/status": "manual" } },
      steps: [step("fetch", { timeoutSeconds: 5 }), step("report")],
    });
    const pod = await waitFor("the run's pod", async () => {
      const pods = await core().listNamespacedPod({ namespace, labelSelector: `${CHILDREN}=slow` });
      return pods.items[0];
    });
    const startedAt = new Date(Date.now() - 3000).toISOString();
    await core().patchNamespacedPodStatus(
      {
        name: pod.metadata!.name!,
        namespace,
        body: {
          status: {
            phase: "Pending",
            initContainerStatuses: [
              {
                name: "fetch",
                image: "registry.example/tools:1",
                imageID: "",
                ready: false,
                restartCount: 0,
                state: { running: { startedAt } },
              },
            ],
          },
        },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    // 3 s into a 5 s limit: the operator looks again when the limit passes and stops the run.
    const pl = await waitStatus(namespace, "slow", "the run stopped", (st) => st.phase === "Failed");
    const failure = pl.status!.lastFailure!;
    assert.equal(failure.reason, "DeadlineExceeded");
    assert.match(failure.message ?? "", /step "fetch" ran \d+ s, longer than its timeoutSeconds \(5 s\)/);
    const job = await batch().readNamespacedJob({ name: failure.jobName, namespace });
    assert.ok((job.spec?.activeDeadlineSeconds ?? 0) >= 1);
    assert.match(job.metadata?.annotations?.["agentry.dev/step-timeout"] ?? "", /step "fetch"/);
    const events = await core().listNamespacedEvent({ namespace });
    const timedOut = events.items.find((e) => e.reason === "StepTimedOut");
    assert.equal(timedOut?.type, "Warning");
    assert.match(timedOut?.message ?? "", /step "fetch"/);
  });

  it("makes a CronJob for a cron schedule, and run-now starts one Job per request id", async () => {
    const namespace = ns.cron;
    await createPipeline(namespace, "nightly", {
      schedule: "0 2 * * *",
      timeZone: "Europe/Paris",
      concurrencyPolicy: "Replace",
      successfulRunsHistoryLimit: 4,
      failedRunsHistoryLimit: 2,
      backoffLimit: 3,
      activeDeadlineSeconds: 900,
      steps: [step("collect"), step("summarize")],
    });
    const pl = await waitStatus(
      namespace,
      "nightly",
      "Scheduled",
      (s) => ready(s)?.status === "True" && ready(s)?.reason === "Scheduled",
    );
    assert.equal(ready(pl.status!)?.status, "True");
    assert.equal(pl.status?.childKind, "CronJob");
    const cj = await batch().readNamespacedCronJob({ name: "nightly", namespace });
    assert.equal(cj.spec?.schedule, "0 2 * * *");
    assert.equal(cj.spec?.timeZone, "Europe/Paris");
    assert.equal(cj.spec?.concurrencyPolicy, "Replace");
    assert.equal(cj.spec?.suspend, false);
    assert.equal(cj.spec?.successfulJobsHistoryLimit, 4);
    assert.equal(cj.spec?.failedJobsHistoryLimit, 2);
    assert.equal(cj.spec?.jobTemplate.spec?.backoffLimit, 3);
    assert.equal(cj.spec?.jobTemplate.spec?.activeDeadlineSeconds, 900);
    assert.equal(cj.metadata?.ownerReferences?.[0]?.uid, pl.metadata.uid);
    assert.equal(cj.metadata?.annotations?.["agentry.dev/pipeline-name"], "nightly");

    await patchPipeline(namespace, "nightly", {
      metadata: { annotations: { "agentry.dev/run-now": "req-1" } },
    });
    const ran = await waitStatus(
      namespace,
      "nightly",
      "run-now succeeded",
      (s) => s.lastRunRequest === "req-1" && s.history?.[0]?.result === "Succeeded",
    );
    assert.ok(ran.status?.lastSuccessfulTime);
    const [job] = await jobsOf(namespace);
    assert.equal(job?.metadata?.annotations?.["agentry.dev/run-request"], "req-1");
    assert.equal(job?.metadata?.ownerReferences?.[0]?.kind, "CronJob");
    assert.equal(job?.metadata?.ownerReferences?.[0]?.uid, cj.metadata?.uid);
    assert.match(job?.metadata?.name ?? "", /^nightly-run-[0-9a-z]{8}$/);

    // The same request again (another annotation changes) starts nothing; a new id starts a run.
    await patchPipeline(namespace, "nightly", { metadata: { annotations: { touched: "yes" } } });
    await patchPipeline(namespace, "nightly", { spec: { suspended: true } });
    await waitStatus(namespace, "nightly", "Suspended", (s) => s.phase === "Suspended");
    assert.equal((await jobsOf(namespace)).length, 1, "no duplicate run for req-1");
    assert.equal((await batch().readNamespacedCronJob({ name: "nightly", namespace })).spec?.suspend, true);
    await patchPipeline(namespace, "nightly", {
      metadata: { annotations: { "agentry.dev/run-now": "req-2" } },
    });
    await waitStatus(namespace, "nightly", "req-2 honoured", (s) => s.lastRunRequest === "req-2");
    assert.equal((await jobsOf(namespace)).length, 2);
    const events = await core().listNamespacedEvent({ namespace });
    assert.ok(events.items.some((e) => e.reason === "RunRequested" && /req-2/.test(e.message ?? "")));
  });

  it("switches between cron and once, removing the old child", async () => {
    const namespace = ns.switch;
    await createPipeline(namespace, "flip", { schedule: "", steps: [step("a")] });
    const once = await waitStatus(namespace, "flip", "Succeeded", (s) => s.phase === "Succeeded");
    await patchPipeline(namespace, "flip", { spec: { schedule: "*/30 * * * *" } });
    await waitStatus(
      namespace,
      "flip",
      "Scheduled",
      (s) => s.childKind === "CronJob" && s.phase === "Scheduled",
    );
    await waitFor("the one-shot Job removed, the CronJob made", async () => {
      const [jobs, cronJobs] = await Promise.all([jobsOf(namespace), cronJobsOf(namespace)]);
      return jobs.length === 0 && cronJobs.length === 1;
    });
    await patchPipeline(namespace, "flip", { spec: { schedule: "@once", backoffLimit: 2 } });
    const back = await waitStatus(
      namespace,
      "flip",
      "Succeeded again",
      (s) => s.childKind === "Job" && s.phase === "Succeeded",
    );
    assert.notEqual(back.status?.childName, once.status?.childName, "a changed spec is a new run");
    await waitFor("the CronJob removed", async () => (await cronJobsOf(namespace)).length === 0);
  });

  it("updates the manifest ConfigMap and the pod template when the steps change", async () => {
    const namespace = ns.manifest;
    await createPipeline(namespace, "steps", { schedule: "@yearly", steps: [step("one")] });
    await waitStatus(
      namespace,
      "steps",
      "Scheduled",
      (s) => ready(s)?.status === "True" && s.phase === "Scheduled",
    );
    const hashOf = async () =>
      (await batch().readNamespacedCronJob({ name: "steps", namespace })).spec?.jobTemplate.spec?.template
        .metadata?.annotations?.["agentry.dev/manifest-hash"];
    const before = await hashOf();
    assert.ok(before);
    await patchPipeline(namespace, "steps", {
      spec: { steps: [step("one"), step("two", { input: "new" })] },
    });
    await waitFor("ConfigMap has the new steps", async () => {
      const cm = await core().readNamespacedConfigMap({ name: "steps-manifest", namespace });
      const manifest = JSON.parse(cm.data?.["manifest.json"] ?? "{}") as { steps?: { name: string }[] };
      return manifest.steps?.length === 2;
    });
    await waitFor("the CronJob's pod template follows the manifest", async () => {
      const now = await hashOf();
      return now !== undefined && now !== before;
    });
  });

  it("waits for a missing AgentRuntime, then dispatches agentRef steps to it", async () => {
    const namespace = ns.agents;
    await createPipeline(namespace, "review", {
      steps: [{ name: "review", agentRef: { name: "coder" }, input: "go" }],
    });
    const waiting = await waitStatus(
      namespace,
      "review",
      "AgentNotFound",
      (s) => ready(s)?.reason === "AgentNotFound",
    );
    assert.match(ready(waiting.status!)?.message ?? "", /AgentRuntime coder .*does not exist/);
    assert.equal((await jobsOf(namespace)).length, 0, "no run without its agent");
    await custom().createNamespacedCustomObject({
      group: "agentry.dev",
      version: "v1alpha1",
      plural: "agentruntimes",
      namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "coder" },
        spec: { image: "registry.example/agent:1" },
      },
    });
    const done = await waitStatus(namespace, "review", "Succeeded", (s) => s.phase === "Succeeded");
    const job = await batch().readNamespacedJob({ name: done.status!.childName!, namespace });
    const container = job.spec?.template.spec?.containers[0];
    assert.equal(container?.image, "registry.example/dispatch:1");
    assert.deepEqual(container?.args, [
      "dispatch",
      "--manifest",
      "/etc/agentry/pipeline/manifest.json",
      "--step",
      "review",
    ]);
    const url = container?.env?.find((e) => e.name === "AGENTRY_AGENT_URL")?.value;
    assert.equal(url, `http://coder.${namespace}.svc:8080`);
  });

  it("reports the runs the CronJob starts on its schedule", async () => {
    const namespace = ns.scheduled;
    const pl = await waitFor(
      "a scheduled run succeeded",
      async () => {
        const p = await getPipeline(namespace, "tick");
        return p.status?.history?.some((r) => r.result === "Succeeded") ? p : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    assert.ok(pl.status?.lastScheduleTime, "lastScheduleTime");
    assert.ok(pl.status?.lastSuccessfulTime, "lastSuccessfulTime");
    assert.equal(ready(pl.status)?.reason, "Scheduled");
    const job = await batch().readNamespacedJob({ name: pl.status.history![0]!.jobName, namespace });
    assert.equal(job.metadata?.ownerReferences?.[0]?.kind, "CronJob");
    assert.equal(job.metadata?.annotations?.["agentry.dev/pipeline-name"], "tick");
    assert.equal(job.metadata?.annotations?.["agentry.dev/resource-kind"], "Pipeline");
    // Stop the minute-by-minute runs: the zero-writes test counts every pipeline write.
    await custom().deleteNamespacedCustomObject({ ...GROUP, namespace, name: "tick" });
    await waitFor("tick's CronJob gone", async () => (await cronJobsOf(namespace)).length === 0);
  });

  it("makes zero writes when reconciling an unchanged state again", async () => {
    const namespace = ns.steady;
    await createPipeline(namespace, "cron", { schedule: "@daily", steps: [step("a")] });
    await createPipeline(namespace, "once", { steps: [step("a")] });
    await waitStatus(namespace, "cron", "Scheduled", (s) => ready(s)?.status === "True");
    await waitStatus(namespace, "once", "Succeeded", (s) => ready(s)?.status === "True");
    // With --resync-period=1s every object is reconciled again each second.
    const writes = await writesAcrossResyncs(operator, "pipeline");
    assert.equal(writes.after, writes.before, "resyncs wrote nothing");
  });

  it("removes every child when the Pipeline is deleted", async () => {
    const namespace = ns.cleanup;
    await createPipeline(namespace, "gone", {
      schedule: "@daily",
      steps: [step("a")],
    });
    await waitStatus(
      namespace,
      "gone",
      "Scheduled",
      (s) => ready(s)?.status === "True" && s.phase === "Scheduled",
    );
    await patchPipeline(namespace, "gone", { metadata: { annotations: { "agentry.dev/run-now": "x" } } });
    await waitFor("CronJob, run-now Job and ConfigMap exist", async () => {
      const [jobs, cronJobs, cms] = await Promise.all([
        jobsOf(namespace),
        cronJobsOf(namespace),
        core().listNamespacedConfigMap({ namespace, labelSelector: CHILDREN }),
      ]);
      return jobs.length === 1 && cronJobs.length === 1 && cms.items.length === 1;
    });
    await custom().deleteNamespacedCustomObject({ ...GROUP, namespace, name: "gone" });
    await waitFor("children garbage-collected", async () => {
      const [jobs, cronJobs, cms, pods] = await Promise.all([
        jobsOf(namespace),
        cronJobsOf(namespace),
        core().listNamespacedConfigMap({ namespace, labelSelector: CHILDREN }),
        core().listNamespacedPod({ namespace }),
      ]);
      return jobs.length === 0 && cronJobs.length === 0 && cms.items.length === 0 && pods.items.length === 0;
    });
  });
});
