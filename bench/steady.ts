// Benchmark 3: steady state. N AgentRuntimes (with their Pods and Services) in the
// operator's caches: its RSS and a heap snapshot summary, the writes a full resync makes
// (goal 0) and a restart makes (goal 0; the restarted operator, at its default resync
// period, serves the streams), then, run after run, a stream of spec changes at a fixed rate beside its floor
// in the same run: a plain client making the same Pod replacements (a new Pod with the new
// env, then the old one deleted) at the same rate. Figures: work-queue wait p99,
// change-to-Ready p50/p99 of both and their ratio, operator writes per change.
import type { KubeObject } from "../lib/kube/client.ts";
import { settledWrites } from "../test/harness/operator.ts";
import { waitFor } from "../test/harness/process.ts";
import { agentRuntime, createAll } from "./create.ts";
import { heapSummary } from "./heap.ts";
import { operatorStarted, paced, writeCounts } from "./paced.ts";
import {
  benchNamespace,
  benchOperator,
  BenchWatch,
  bucketQuantile,
  conditionTrue,
  CpuMeter,
  envNumber,
  fig,
  figOf,
  histogramBuckets,
  percentile,
  ReadyWatcher,
  round,
  rssMiB,
  say,
  type BenchContext,
  type BenchOperator,
  type BenchResult,
} from "./lib.ts";

const WAIT = "workqueue_queue_duration_seconds";
const CONTROL_PLANE = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
const controlPlaneMs = (cpuMs: Record<string, number>) =>
  round(
    CONTROL_PLANE.reduce((sum, c) => sum + (cpuMs[c] ?? 0), 0),
    1,
  );
const cpuText = (cpuMs: Record<string, number>) =>
  Object.entries(cpuMs)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
const IMAGE = "registry.example/agent:1";

interface Stream {
  p50S: number;
  p99S: number;
  achieved: number;
  unfinished: number;
  failed: number;
  /** CPU milliseconds per change of each process (the control plane's, the operator, the bench), from the first change until the last is Ready. */
  cpuMs: Record<string, number>;
}

/** Records, per name, when an object first satisfies `done` after a change was sent. */
class ChangeWatcher extends BenchWatch {
  readonly pending = new Map<string, { at: number; done: (o: KubeObject) => boolean }>();
  readonly latencies: number[] = [];

  constructor(
    ctx: BenchContext,
    apiVersion: string,
    kind: string,
    namespace: string,
    labelSelector?: string,
  ) {
    super(
      ctx,
      apiVersion,
      kind,
      [namespace],
      (o) => {
        const p = this.pending.get(o.metadata.name!);
        if (p && p.done(o)) {
          this.latencies.push((performance.now() - p.at) / 1000);
          this.pending.delete(o.metadata.name!);
        }
      },
      labelSelector,
    );
  }

  /** Waits up to 120 s for the pending changes; the figures of the stream. */
  async finish(achieved: number, failed: number, meter: CpuMeter, total: number): Promise<Stream> {
    await waitFor("changes to be Ready", () => this.pending.size === 0, {
      timeoutMs: 120_000,
      intervalMs: 100,
    }).catch(() => undefined);
    const cpuMs = Object.fromEntries(
      Object.entries(meter.seconds()).map(([k, s]) => [k, round((s * 1000) / total, 1)]),
    );
    return {
      p50S: percentile(this.latencies, 50),
      p99S: percentile(this.latencies, 99),
      achieved,
      unfinished: this.pending.size,
      failed,
      cpuMs,
    };
  }
}

const FLOOR_APP = "bench-floor-change";
/** On the serviced floor's Pods: which of its Services selects the Pod. */
const FLOOR_SLOT = "bench.agentry.dev/floor-slot";

const floorPod = (namespace: string, name: string, revision: string, slot?: number): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name,
    namespace,
    labels: { app: FLOOR_APP, ...(slot !== undefined ? { [FLOOR_SLOT]: String(slot) } : {}) },
  },
  spec: { containers: [{ name: "agent", image: IMAGE, env: [{ name: "BENCH_REVISION", value: revision }] }] },
});

/**
 * The floor's `m` Pods in `namespace`, Ready; with `services`, each selected by a Service of
 * its own, as an AgentRuntime's Pod is. Returns the current Pod name per slot.
 */
async function floorPods(
  ctx: BenchContext,
  namespace: string,
  m: number,
  services: boolean,
  timeoutMs: number,
): Promise<Map<number, string>> {
  const current = new Map<number, string>();
  // Only the floor's Pods: the serviced floor's namespace holds the AgentRuntimes' Ready Pods too.
  const filled = new ReadyWatcher(
    ctx,
    "v1",
    "Pod",
    [namespace],
    (o) => conditionTrue(o, "Ready"),
    undefined,
    `app=${FLOOR_APP}`,
  );
  await filled.start();
  await createAll(ctx.admin, m, (j) => {
    current.set(j, `f-${j}-0`);
    const service: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `f-${j}`, namespace, labels: { app: FLOOR_APP } },
      spec: { selector: { [FLOOR_SLOT]: String(j) }, ports: [{ name: "http", port: 8080 }] },
    };
    const pod = floorPod(namespace, `f-${j}-0`, "0", services ? j : undefined);
    return services ? [service, pod] : [pod];
  });
  await filled.waitAll(m, timeoutMs);
  await filled.stop();
  return current;
}

/**
 * The floor: `total` Pod replacements at `rate` over the Pods of `current` (a new Pod with the
 * new env, then the old one deleted), as a plain client makes them.
 */
async function floorStream(
  ctx: BenchContext,
  operator: BenchOperator,
  namespace: string,
  current: Map<number, string>,
  services: boolean,
  rate: number,
  total: number,
  run: number,
): Promise<Stream> {
  const m = current.size;
  const watcher = new ChangeWatcher(ctx, "v1", "Pod", namespace, `app=${FLOOR_APP}`);
  await watcher.start();
  const meter = new CpuMeter(ctx, { operator: operator.child.pid });
  let failed = 0;
  const start = performance.now();
  await paced(total, rate, async (i) => {
    const j = i % m;
    const old = current.get(j)!;
    const name = `f-${j}-${run}-${i + 1}`;
    current.set(j, name);
    try {
      watcher.pending.set(name, { at: performance.now(), done: (o) => conditionTrue(o, "Ready") });
      await ctx.admin.create(floorPod(namespace, name, `${run}-${i + 1}`, services ? j : undefined));
      await ctx.admin.delete({ apiVersion: "v1", kind: "Pod", metadata: { namespace, name: old } });
    } catch {
      failed++;
      watcher.pending.delete(name);
    }
  });
  const achieved = total / ((performance.now() - start) / 1000);
  const result = await watcher.finish(achieved, failed, meter, total);
  await watcher.stop();
  return result;
}

/** agentry: `total` spec changes (an env var, so the Pod is replaced) at `rate` over AgentRuntimes s-0…s-(m-1). */
async function agentStream(
  ctx: BenchContext,
  operator: BenchOperator,
  namespace: string,
  m: number,
  rate: number,
  total: number,
  run: number,
): Promise<Stream & { waitP99S: number; writesPerChange: number; byKind: string }> {
  const watcher = new ChangeWatcher(ctx, "agentry.dev/v1alpha1", "AgentRuntime", namespace);
  await watcher.start();
  const wait0 = histogramBuckets(await operator.metrics(), WAIT, { name: "agentruntime" });
  const writes0 = await operator.counter("agentry_writes_total", { controller: "agentruntime" });
  const kinds0 = await writeCounts(operator, "agentruntime");
  const meter = new CpuMeter(ctx, { operator: operator.child.pid });
  let failed = 0;
  const start = performance.now();
  await paced(total, rate, async (i) => {
    const name = `s-${i % m}`;
    try {
      const at = performance.now();
      const o = await ctx.admin.mergePatch<KubeObject>(
        { apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime", metadata: { name, namespace } },
        { spec: { env: [{ name: "BENCH_REVISION", value: `${run}-${i}` }] } },
      );
      const generation = o.metadata.generation!;
      watcher.pending.set(name, {
        at,
        // Rolled out (kstatus Current): while the old Pod serves, Ready is True beside Reconciling.
        done: (x) =>
          ((x["status"] as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0) >=
            generation &&
          conditionTrue(x, "Ready") &&
          !conditionTrue(x, "Reconciling") &&
          !conditionTrue(x, "Stalled"),
      });
    } catch {
      failed++;
    }
  });
  const achieved = total / ((performance.now() - start) / 1000);
  const result = await watcher.finish(achieved, failed, meter, total);
  await watcher.stop();
  const wait1 = histogramBuckets(await operator.metrics(), WAIT, { name: "agentruntime" });
  const writes = (await operator.counter("agentry_writes_total", { controller: "agentruntime" })) - writes0;
  const byKind = [...(await writeCounts(operator, "agentruntime"))]
    .map(([k, n]) => [k, (n - (kinds0.get(k) ?? 0)) / (total - failed)] as const)
    .filter(([, per]) => per > 0)
    .map(([k, per]) => `${k} ${per.toFixed(2)}`)
    .join(", ");
  return {
    ...result,
    waitP99S: bucketQuantile(wait1, wait0, 0.99),
    writesPerChange: writes / (total - failed),
    byKind,
  };
}

export async function steadyBench(ctx: BenchContext): Promise<BenchResult> {
  const n = envNumber("STEADY_N", 500);
  const rate = envNumber("CHANGE_RATE", 50);
  const seconds = envNumber("CHANGE_SECONDS", 20);
  const runs = envNumber("RUNS", 3);
  const resyncS = envNumber("RESYNC_S", 30);
  const timeoutMs = envNumber("RUN_TIMEOUT_S", 300) * 1000;
  const namespace = await benchNamespace(ctx, "steady");
  const operator = await benchOperator(ctx, [namespace], [`--resync-period=${resyncS}s`], undefined, {
    heapSnapshots: true,
  });
  const watcher = new ReadyWatcher(ctx, "agentry.dev/v1alpha1", "AgentRuntime", [namespace], (o) =>
    conditionTrue(o, "Ready"),
  );
  await watcher.start();
  const t0 = performance.now();
  await createAll(ctx.admin, n, (i) => [agentRuntime(namespace, `s-${i}`)]);
  await watcher.waitAll(n, timeoutMs);
  const fillS = (performance.now() - t0) / 1000;
  await watcher.stop();
  say(`steady: ${n} AgentRuntimes Ready in ${fillS.toFixed(1)}s`);

  // Full resync: let writes settle, then wait for a resync (>= n more reconciles).
  const writes = () => operator.counter("agentry_writes_total", { controller: "agentruntime" });
  const reconciles = () =>
    operator.counter("controller_runtime_reconcile_total", { controller: "agentruntime" });
  const before = await settledWrites(operator, "agentruntime", { intervalMs: 3000, timeoutMs });
  const rss = rssMiB(operator.child.pid);
  const r0 = await reconciles();
  await waitFor("a full resync", async () => (await reconciles()) >= r0 + n, {
    timeoutMs: (resyncS + 120) * 1000,
    intervalMs: 500,
  });
  const resyncWrites = (await writes()) - before;
  say(`steady: RSS ${rss.toFixed(0)} MiB; a full resync wrote ${resyncWrites} times`);
  const heap = await heapSummary(operator, `operator with ${n} AgentRuntimes, Pods and Services cached`);

  // The change streams run on the operator restarted at its default resync period (or
  // AGENTRY_BENCH_STREAM_RESYNC_S): the short one above is there to see a full resync, and at
  // 10,000 it would be 333 resync passes a second beside the stream. A restart visits every
  // AgentRuntime once, and must write nothing.
  const streamResyncS = process.env.AGENTRY_BENCH_STREAM_RESYNC_S;
  await operator.kill("SIGTERM");
  const streamOperator = await benchOperator(
    ctx,
    [namespace],
    streamResyncS ? [`--resync-period=${streamResyncS}s`] : [],
  );
  await operatorStarted(streamOperator);
  const restarted = performance.now();
  await waitFor(
    "the restarted operator's pass over every AgentRuntime",
    async () =>
      (await streamOperator.counter("controller_runtime_reconcile_total", { controller: "agentruntime" })) >=
        n && (await streamOperator.counter("workqueue_depth", { name: "agentruntime" })) === 0,
    { timeoutMs, intervalMs: 500 },
  );
  const restartS = (performance.now() - restarted) / 1000;
  const restartWrites = await streamOperator.counter("agentry_writes_total", { controller: "agentruntime" });
  say(
    `steady: restarted, every AgentRuntime visited in ${restartS.toFixed(1)}s with ${restartWrites} writes`,
  );

  // Change streams, run after run: the floors' Pod replacements, then agentry's changes. The
  // bare floor replaces Pods in a namespace of their own, as before; the serviced floor
  // replaces Pods that a Service of their own selects, in the AgentRuntimes' namespace: the
  // same Pod replacements as agentry's, which make the endpoint controllers and the
  // scheduler's default spreading look at every Service of the namespace per Pod event.
  const total = Math.round(rate * seconds);
  const m = Math.min(n, total);
  const serviced = await floorPods(ctx, namespace, m, true, timeoutMs);
  const bare: Stream[] = [];
  const floors: Stream[] = [];
  const agents: Awaited<ReturnType<typeof agentStream>>[] = [];
  for (let r = 0; r < runs; r++) {
    const bareNamespace = await benchNamespace(ctx, "sfloor");
    const b = await floorStream(
      ctx,
      streamOperator,
      bareNamespace,
      await floorPods(ctx, bareNamespace, m, false, timeoutMs),
      false,
      rate,
      total,
      r,
    );
    bare.push(b);
    const f = await floorStream(ctx, streamOperator, namespace, serviced, true, rate, total, r);
    floors.push(f);
    const a = await agentStream(ctx, streamOperator, namespace, m, rate, total, r);
    agents.push(a);
    say(
      `steady run ${r + 1}: ${total} changes at ${a.achieved.toFixed(1)}/s: change-to-Ready p99 ${a.p99S.toFixed(2)}s ` +
        `(serviced floor ${f.p99S.toFixed(2)}s, bare floor ${b.p99S.toFixed(2)}s), queue wait p99 ≤ ${a.waitP99S}s, ` +
        `${a.writesPerChange.toFixed(2)} writes per change`,
    );
  }
  const ratio = fig(
    agents.map((a, i) => a.p99S / floors[i]!.p99S),
    "x",
    {
      goal: "≤ 1.5",
      note: "agentry change-to-Ready p99 / the serviced floor's (the same Pod replacements, each Pod behind its own Service in the same namespace), run by run",
    },
  );
  ratio.met = ratio.value <= 1.5 && agents.every((a) => a.unfinished === 0);
  const bareRatio = fig(
    agents.map((a, i) => a.p99S / bare[i]!.p99S),
    "x",
    {
      note: "agentry change-to-Ready p99 / the bare floor's (Pods with no Service, in a namespace of their own), run by run",
    },
  );
  const waitP99 = fig(
    agents.map((a) => a.waitP99S),
    "s",
    { goal: "≤ 1", note: "upper bound of the histogram bucket holding the p99 (Infinity: above 30 s)" },
  );
  waitP99.met = waitP99.value <= 1;
  const writesPerChange = fig(
    agents.map((a) => a.writesPerChange),
    "writes",
    {
      goal: "≤ 4",
      note: "the operator's writes from the first change until every change is Ready (or the wait ends) ÷ changes: a run with changes not Ready counts only part of their writes, and is no verdict",
    },
  );
  if (agents.every((a) => a.unfinished === 0)) writesPerChange.met = writesPerChange.value <= 4;
  const byKindNote = `The operator's writes per change by kind and verb, run by run: ${agents.map((a) => a.byKind || "none").join("; ")}.`;
  return {
    name: "steady",
    title: "Steady state: cached AgentRuntimes, resync, changes under load beside their floor",
    date: new Date().toISOString(),
    sizes: {
      agentRuntimes: n,
      changesPerSecond: rate,
      changeSeconds: seconds,
      changedObjects: m,
      runs,
      resyncPeriodS: resyncS,
      streamResyncPeriodS: streamResyncS ? Number(streamResyncS) : "the operator's default",
      clientQps: ctx.qps,
      operator: process.env.AGENTRY_BENCH_COMPILED === "1" ? "compiled" : "tsx",
      operatorWorkers: process.env.AGENTRY_BENCH_WORKERS ?? "default",
    },
    figures: {
      fill_to_all_ready_s: {
        value: round(fillS),
        unit: "s",
        note: "creates unthrottled; operator at the bench QPS; one fill",
      },
      operator_rss_mib: {
        value: round(rss, 0),
        unit: "MiB",
        ...(n >= 10_000
          ? { goal: "≤ 200", met: rss <= 200 }
          : n >= 1000
            ? { goal: "≤ 100", met: rss <= 100 }
            : {}),
        note: `settled, with ${n} AgentRuntimes, Pods and Services cached`,
      },
      full_resync_writes: { value: resyncWrites, unit: "writes", goal: "0", met: resyncWrites === 0 },
      restart_pass_s: {
        value: round(restartS),
        unit: "s",
        note: "a restarted operator's first pass over every AgentRuntime (from its controller's start)",
      },
      restart_writes: { value: restartWrites, unit: "writes", goal: "0", met: restartWrites === 0 },
      changes_per_s_achieved: figOf(agents, (a) => a.achieved, "changes/s"),
      workqueue_wait_p99_s: waitP99,
      floor_change_to_ready_p50_s: figOf(bare, (f) => f.p50S, "s"),
      floor_change_to_ready_p99_s: figOf(bare, (f) => f.p99S, "s"),
      serviced_floor_change_to_ready_p50_s: figOf(floors, (f) => f.p50S, "s"),
      serviced_floor_change_to_ready_p99_s: figOf(floors, (f) => f.p99S, "s"),
      change_to_ready_p50_s: figOf(agents, (a) => a.p50S, "s"),
      change_to_ready_p99_s: figOf(agents, (a) => a.p99S, "s"),
      change_to_ready_p99_ratio: ratio,
      change_to_ready_p99_vs_bare_floor: bareRatio,
      control_plane_cpu_ms_per_change: figOf(agents, (a) => controlPlaneMs(a.cpuMs), "ms", {
        note: "etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, from the first change until the last is Ready",
      }),
      serviced_floor_control_plane_cpu_ms_per_change: figOf(floors, (f) => controlPlaneMs(f.cpuMs), "ms"),
      floor_control_plane_cpu_ms_per_change: figOf(bare, (f) => controlPlaneMs(f.cpuMs), "ms"),
      operator_cpu_ms_per_change: figOf(agents, (a) => a.cpuMs["operator"] ?? NaN, "ms"),
      operator_writes_per_change: writesPerChange,
      changes_not_ready_after_120s: figOf(agents, (a) => a.unfinished, "changes"),
      floor_changes_not_ready_after_120s: figOf(bare, (f) => f.unfinished, "changes"),
      serviced_floor_changes_not_ready_after_120s: figOf(floors, (f) => f.unfinished, "changes"),
      changes_failed_to_send: figOf(agents, (a) => a.failed, "changes"),
    },
    notes: [
      "A change sets spec.env, which changes the Pod template: the Pod is replaced. The floors make the same replacement with a plain client (a new Pod with the new env, then the old one deleted): the serviced floor on Pods each selected by a Service of its own in the AgentRuntimes' namespace (as agentry's Pods are; the goal's ratio is against it), the bare floor on Pods with no Service in a namespace of their own.",
      `CPU ms per change by process, run by run (bare floor | serviced floor | agentry): ${agents
        .map((a, i) => [bare[i]!, floors[i]!, a].map((x) => cpuText(x.cpuMs)).join(" | "))
        .join("; ")}.`,
      `The change streams ran on the operator restarted after the resync measurement, at ${streamResyncS ? `--resync-period=${streamResyncS}s` : "its default resync period"}.`,
      byKindNote,
      ...heap,
    ],
  };
}
