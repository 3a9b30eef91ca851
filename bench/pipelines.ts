// Benchmark 4: N one-shot Pipelines (one step) to Succeeded against N plain Jobs to
// Complete, created at the bench QPS; kwok lets Job-owned pods succeed at once.
import { KubeClient, type KubeObject } from "../lib/kube/client.ts";
import { createAll } from "./create.ts";
import {
  benchNamespace,
  benchOperator,
  busiest,
  capped,
  conditionTrue,
  CpuMeter,
  envNumber,
  fig,
  figOf,
  percentile,
  ReadyWatcher,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

const IMAGE = "registry.example/tools:1";

const job = (namespace: string, name: string): KubeObject => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name, namespace },
  spec: {
    backoffLimit: 0,
    template: {
      spec: {
        restartPolicy: "Never",
        containers: [{ name: "step", image: IMAGE, command: ["run", "step"] }],
      },
    },
  },
});

const pipeline = (namespace: string, name: string): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Pipeline",
  metadata: { name, namespace },
  spec: { schedule: "@once", steps: [{ name: "step", image: IMAGE, command: ["run", "step"] }] },
});

interface Run {
  allDoneS: number;
  p99S: number;
  busiest: string;
}

async function run(
  ctx: BenchContext,
  namespace: string,
  n: number,
  kind: "Job" | "Pipeline",
  operatorPid: number | undefined,
): Promise<Run> {
  const client = new KubeClient(ctx.kc, { qps: ctx.qps, burst: ctx.burst, userAgent: "bench-user" });
  const watcher =
    kind === "Job"
      ? new ReadyWatcher(ctx, "batch/v1", "Job", [namespace], (o) => conditionTrue(o, "Complete"))
      : new ReadyWatcher(
          ctx,
          "agentry.dev/v1alpha1",
          "Pipeline",
          [namespace],
          (o) => (o["status"] as { phase?: string } | undefined)?.phase === "Succeeded",
        );
  await watcher.start();
  const meter = new CpuMeter(ctx, kind === "Pipeline" ? { operator: operatorPid } : {});
  const t0 = performance.now();
  const created = await createAll(client, n, (i) => [
    kind === "Job" ? job(namespace, `j-${i}`) : pipeline(namespace, `p-${i}`),
  ]);
  await watcher.waitAll(n, envNumber("RUN_TIMEOUT_S", 300) * 1000);
  const allDoneS = (Math.max(...watcher.readyAt.values()) - t0) / 1000;
  const cores = meter.cores();
  await watcher.stop();
  const lat = [...created].map(([k, t]) => (watcher.readyAt.get(k)! - t) / 1000);
  return { allDoneS, p99S: percentile(lat, 99), busiest: busiest(cores) };
}

export async function pipelinesBench(ctx: BenchContext): Promise<BenchResult> {
  const n = envNumber("PIPELINES", 100);
  const runs = envNumber("RUNS", 3);
  const plNamespaces: string[] = [];
  for (let r = 0; r < runs; r++) plNamespaces.push(await benchNamespace(ctx, "pl"));
  const operator = await benchOperator(ctx, plNamespaces, ["--dispatcher-image=registry.example/dispatch:1"]);
  const jobs: Run[] = [];
  const pipelines: Run[] = [];
  const capMs = envNumber("RUN_TIMEOUT_S", 300) * 1000 + 60_000;
  for (let r = 0; r < runs; r++) {
    const jobNs = await benchNamespace(ctx, "job");
    const j = await capped("jobs run", capMs, () => run(ctx, jobNs, n, "Job", undefined));
    say(`jobs run ${r + 1}: ${n} Jobs Complete in ${j.allDoneS.toFixed(2)}s (${j.busiest})`);
    jobs.push(j);
    const p = await capped("pipelines run", capMs, () =>
      run(ctx, plNamespaces[r]!, n, "Pipeline", operator.child.pid),
    );
    say(`pipelines run ${r + 1}: ${n} Pipelines Succeeded in ${p.allDoneS.toFixed(2)}s (${p.busiest})`);
    pipelines.push(p);
  }
  const ratio = fig(
    pipelines.map((p, i) => p.allDoneS / jobs[i]!.allDoneS),
    "x",
  );
  return {
    name: "pipelines",
    title: "One-shot Pipelines to Succeeded vs plain Jobs to Complete",
    date: new Date().toISOString(),
    sizes: {
      N: n,
      runs,
      clientQps: ctx.qps,
      operatorWorkers: process.env.AGENTRY_BENCH_WORKERS ?? "default",
      clientBurst: ctx.burst,
    },
    figures: {
      jobs_all_complete_s: figOf(jobs, (j) => j.allDoneS, "s"),
      jobs_create_to_complete_p99_s: figOf(jobs, (j) => j.p99S, "s"),
      pipelines_all_succeeded_s: figOf(pipelines, (p) => p.allDoneS, "s"),
      pipelines_create_to_succeeded_p99_s: figOf(pipelines, (p) => p.p99S, "s"),
      ratio_all_done: ratio,
    },
    notes: [
      ...jobs.map((j, i) => `jobs run ${i + 1}: busiest ${j.busiest}`),
      ...pipelines.map((p, i) => `pipelines run ${i + 1}: busiest ${p.busiest}`),
    ],
  };
}
