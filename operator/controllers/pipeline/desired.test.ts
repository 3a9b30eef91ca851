import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1CronJob, V1Job, V1PodSpec } from "@kubernetes/client-node";
import type { Pipeline } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import {
  ANNOTATION_MANIFEST_HASH,
  ANNOTATION_PIPELINE_ID,
  ANNOTATION_PIPELINE_NAME,
  ANNOTATION_RESOURCE_KIND,
  ANNOTATION_RUN_REQUEST,
  LABEL_PIPELINE,
  desiredPipeline,
  isOnce,
  runJobName,
  runNowJob,
  type PipelineContext,
} from "./desired.ts";

type Obj = KubeObject;
const asJob = (o: KubeObject) => o as unknown as V1Job;
const asCronJob = (o: KubeObject) => o as unknown as V1CronJob;

const ctx: PipelineContext = {
  dispatcherImage: "registry.example/dispatch:1",
  agentUrls: { coder: "http://coder.team.svc:8080" },
};

function pipeline(spec: Record<string, unknown> = {}, name = "nightly"): Pipeline {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Pipeline",
    metadata: { name, namespace: "team", uid: "uid-1", generation: 1 },
    spec: specSchemas.Pipeline.parse({
      steps: [
        { name: "fetch", image: "registry.example/tools:1", command: ["fetch"], input: "go" },
        { name: "review", agentRef: { name: "coder" }, input: "review it" },
      ],
      ...spec,
    }),
  };
}

const podSpecOf = (job: Obj): V1PodSpec => asJob(job).spec!.template.spec!;
const allContainers = (pod: V1PodSpec): V1Container[] => [...(pod.initContainers ?? []), ...pod.containers];

describe("desiredPipeline", () => {
  it("classifies schedules", () => {
    for (const [schedule, once] of [
      ["", true],
      ["@once", true],
      ["@daily", false],
      ["*/5 * * * *", false],
    ] as const) {
      assert.equal(isOnce(schedule), once, schedule);
    }
  });

  it("makes a CronJob for a cron schedule, passing the settings through", () => {
    const d = desiredPipeline(
      pipeline({
        schedule: "0 2 * * *",
        timeZone: "Europe/Paris",
        concurrencyPolicy: "Replace",
        suspended: true,
        startingDeadlineSeconds: 60,
        successfulRunsHistoryLimit: 5,
        failedRunsHistoryLimit: 2,
        backoffLimit: 4,
        activeDeadlineSeconds: 600,
      }),
      ctx,
    );
    assert.equal(d.mode, "CronJob");
    const cj = asCronJob(d.child);
    const spec = cj.spec;
    assert.equal(cj.kind, "CronJob");
    assert.equal(cj.metadata?.name, "nightly");
    assert.deepEqual(
      {
        schedule: spec.schedule,
        timeZone: spec.timeZone,
        suspend: spec.suspend,
        concurrencyPolicy: spec.concurrencyPolicy,
        startingDeadlineSeconds: spec.startingDeadlineSeconds,
        successfulJobsHistoryLimit: spec.successfulJobsHistoryLimit,
        failedJobsHistoryLimit: spec.failedJobsHistoryLimit,
        backoffLimit: spec.jobTemplate.spec?.backoffLimit,
        activeDeadlineSeconds: spec.jobTemplate.spec?.activeDeadlineSeconds,
      },
      {
        schedule: "0 2 * * *",
        timeZone: "Europe/Paris",
        suspend: true,
        concurrencyPolicy: "Replace",
        startingDeadlineSeconds: 60,
        successfulJobsHistoryLimit: 5,
        failedJobsHistoryLimit: 2,
        backoffLimit: 4,
        activeDeadlineSeconds: 600,
      },
    );
  });

  for (const schedule of ["", "@once"]) {
    it(`makes a one-shot Job named by its spec hash for schedule "${schedule}"`, () => {
      const d = desiredPipeline(pipeline({ schedule }), ctx);
      assert.equal(d.mode, "Job");
      assert.equal(d.child.kind, "Job");
      assert.match(d.childName, /^nightly-[0-9a-z]{8}$/);
      const changed = desiredPipeline(pipeline({ schedule, backoffLimit: 3 }), ctx);
      assert.notEqual(changed.childName, d.childName, "a changed spec is a new run");
      assert.equal(desiredPipeline(pipeline({ schedule }), ctx).childName, d.childName, "stable");
    });
  }

  it("labels, annotates and owns every child", () => {
    for (const schedule of ["", "@hourly"]) {
      const d = desiredPipeline(pipeline({ schedule }), ctx);
      for (const obj of [d.configMap, d.child]) {
        assert.equal(obj.metadata.labels?.[LABEL_PIPELINE], "nightly");
        assert.equal(obj.metadata.labels?.["app.kubernetes.io/managed-by"], "agentry");
        assert.equal(obj.metadata.annotations?.[ANNOTATION_PIPELINE_NAME], "nightly");
        assert.equal(obj.metadata.annotations?.[ANNOTATION_RESOURCE_KIND], "Pipeline");
        assert.equal(obj.metadata.annotations?.[ANNOTATION_PIPELINE_ID], "uid-1");
        assert.deepEqual(obj.metadata.ownerReferences?.[0], {
          apiVersion: "agentry.dev/v1alpha1",
          kind: "Pipeline",
          name: "nightly",
          uid: "uid-1",
          controller: true,
          blockOwnerDeletion: true,
        });
      }
      // Jobs a CronJob makes inherit the template's labels and annotations.
      assert.equal(d.jobTemplate.metadata.annotations?.[ANNOTATION_PIPELINE_ID], "uid-1");
      assert.equal(d.jobTemplate.metadata.labels?.[LABEL_PIPELINE], "nightly");
    }
  });

  it("puts the manifest in a ConfigMap mounted read-only, with its hash in the pod template", () => {
    const d = desiredPipeline(pipeline(), ctx);
    assert.equal(d.configMapName, "nightly-manifest");
    const data = (d.configMap as unknown as { data: Record<string, string> }).data;
    const manifest = JSON.parse(data["manifest.json"]!) as { pipeline: string; steps: { name: string }[] };
    assert.equal(manifest.pipeline, "nightly");
    assert.deepEqual(
      manifest.steps.map((s) => s.name),
      ["fetch", "review"],
    );
    const pod = podSpecOf(d.child);
    assert.deepEqual(pod.volumes?.[1], { name: "manifest", configMap: { name: "nightly-manifest" } });
    for (const c of allContainers(pod)) {
      assert.ok(
        c.volumeMounts?.some((m) => m.mountPath === "/etc/agentry/pipeline" && m.readOnly === true),
        `${c.name} mounts the manifest read-only`,
      );
    }
    const template = asJob(d.child).spec!.template;
    assert.equal(template.metadata?.annotations?.[ANNOTATION_MANIFEST_HASH], d.manifestHash);

    const cron = (input: string) =>
      desiredPipeline(
        pipeline({
          schedule: "@daily",
          steps: [{ name: "only", image: "registry.example/tools:1", input }],
        }),
        ctx,
      );
    const [a, b] = [cron("one"), cron("two")];
    assert.notEqual(a.manifestHash, b.manifestHash);
    const hashOf = (o: Obj) =>
      asCronJob(o).spec?.jobTemplate.spec?.template.metadata?.annotations?.[ANNOTATION_MANIFEST_HASH];
    assert.notEqual(
      hashOf(a.child),
      hashOf(b.child),
      "a changed manifest changes the CronJob's pod template",
    );
  });

  it("runs steps in order: initContainers, the last one as the main container", () => {
    const pod = podSpecOf(desiredPipeline(pipeline(), ctx).child);
    assert.deepEqual(
      pod.initContainers?.map((c) => c.name),
      ["fetch"],
    );
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ["review"],
    );
    const fetch = pod.initContainers?.[0];
    assert.equal(fetch!.image, "registry.example/tools:1");
    assert.deepEqual(fetch!.command, ["fetch"]);
    assert.ok(fetch!.env?.some((e) => e.name === "AGENTRY_STEP_INPUT" && e.value === "go"));
    const review = pod.containers[0];
    assert.equal(review!.image, "registry.example/dispatch:1");
    assert.deepEqual(review!.args, [
      "dispatch",
      "--manifest",
      "/etc/agentry/pipeline/manifest.json",
      "--step",
      "review",
    ]);
    assert.ok(
      review!.env?.some((e) => e.name === "AGENTRY_AGENT_URL" && e.value === "http://coder.team.svc:8080"),
    );
    const single = podSpecOf(
      desiredPipeline(pipeline({ steps: [{ name: "one", image: "registry.example/x:1" }] }), ctx).child,
    );
    assert.equal(single.initContainers, undefined);
    assert.equal(single.containers[0]?.name, "one");
  });

  it("meets Pod Security restricted", () => {
    for (const sa of [undefined, "runner"]) {
      const pod = podSpecOf(desiredPipeline(pipeline(sa ? { serviceAccountName: sa } : {}), ctx).child);
      assert.equal(pod.restartPolicy, "Never");
      assert.equal(pod.automountServiceAccountToken, sa !== undefined);
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.equal(pod.securityContext?.runAsUser, 65532);
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
      for (const c of allContainers(pod)) {
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
        assert.ok(c.volumeMounts?.some((m) => m.mountPath === "/tmp"));
      }
    }
  });

  it("adds spec.podMetadata to the pods, without letting it replace agentry's own labels", () => {
    const d = desiredPipeline(
      pipeline({
        podMetadata: {
          labels: { mesh: "on", [LABEL_PIPELINE]: "other" },
          annotations: { "kwok.agentry.dev/fail": "boom" },
        },
      }),
      ctx,
    );
    const meta = asJob(d.child).spec?.template.metadata;
    assert.equal(meta?.labels?.mesh, "on");
    assert.equal(meta?.labels?.[LABEL_PIPELINE], "nightly");
    assert.equal(meta?.annotations?.["kwok.agentry.dev/fail"], "boom");
  });

  it("makes a run-now Job from the job template, named by the request id", () => {
    const pl = pipeline({ schedule: "@daily" });
    const d = desiredPipeline(pl, ctx);
    const owner = { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "nightly", uid: "cj-1" } };
    const job = asJob(runNowJob(pl, d, "req-1", owner));
    assert.equal(job.metadata?.name ?? "", runJobName("nightly", "req-1"));
    assert.match(job.metadata?.name ?? "", /^nightly-run-[0-9a-z]{8}$/);
    assert.equal(runJobName("nightly", "req-1"), runJobName("nightly", "req-1"));
    assert.notEqual(runJobName("nightly", "req-1"), runJobName("nightly", "req-2"));
    assert.equal(job.metadata?.annotations?.[ANNOTATION_RUN_REQUEST], "req-1");
    assert.equal(job.metadata?.ownerReferences?.[0]?.uid, "cj-1");
    assert.deepEqual(job.spec, d.jobTemplate.spec);
    assert.ok(runJobName("a".repeat(52), "x").length <= 63);
  });

  it("gives the same objects for the same input", () => {
    assert.deepEqual(desiredPipeline(pipeline(), ctx), desiredPipeline(pipeline(), ctx));
  });
});
