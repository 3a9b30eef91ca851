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
const IMAGE = "registry.example/agent:1";

interface Stream {
  p50S: number;
  p99S: number;
  achieved: number;
  unfinished: number;
  failed: number;
}

/** Records, per name, when an object first satisfies `done` after a change was sent. */
class ChangeWatcher extends BenchWatch {
  readonly pending = new Map<string, { at: number; done: (o: KubeObject) => boolean }>();
  readonly latencies: number[] = [];

  constructor(ctx: BenchContext, apiVersion: string, kind: string, namespace: string) {
    super(ctx, apiVersion, kind, [namespace], (o) => {
      const p = this.pending.get(o.metadata.name!);
      if (p && p.done(o)) {
        this.latencies.push((performance.now() - p.at) / 1000);
        this.pending.delete(o.metadata.name!);
      }
    });
  }

  /** Waits up to 120 s for the pending changes; the figures of the stream. */
  async finish(achieved: number, failed: number): Promise<Stream> {
    await waitFor("changes to be Ready", () => this.pending.size === 0, {
      timeoutMs: 120_000,
      intervalMs: 100,
    }).catch(() => undefined);
    return {
      p50S: percentile(this.latencies, 50),
      p99S: percentile(this.latencies, 99),
      achieved,
      unfinished: this.pending.size,
      failed,
    };
  }
}

const floorPod = (namespace: string, name: string, revision: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app: "bench-floor-change" } },
  spec: { containers: [{ name: "agent", image: IMAGE, env: [{ name: "BENCH_REVISION", value: revision }] }] },
});

/** The floor: `total` Pod replacements at `rate` over `m` Pods, created before, each new Pod before its old one goes. */
async function floorStream(ctx: BenchContext, m: number, rate: number, total: number, timeoutMs: number) {
  const namespace = await benchNamespace(ctx, "sfloor");
  const current = new Map<number, string>();
  const filled = new ReadyWatcher(ctx, "v1", "Pod", [namespace], (o) => conditionTrue(o, "Ready"));
  await filled.start();
  await createAll(ctx.admin, m, (j) => {
    current.set(j, `f-${j}-0`);
    return [floorPod(namespace, `f-${j}-0`, "0")];
  });
  await filled.waitAll(m, timeoutMs);
  await filled.stop();
  const watcher = new ChangeWatcher(ctx, "v1", "Pod", namespace);
  await watcher.start();
  let failed = 0;
  const start = performance.now();
  await paced(total, rate, async (i) => {
    const j = i % m;
    const old = current.get(j)!;
    const name = `f-${j}-${i + 1}`;
    current.set(j, name);
    try {
      watcher.pending.set(name, { at: performance.now(), done: (o) => conditionTrue(o, "Ready") });
      await ctx.admin.create(floorPod(namespace, name, String(i + 1)));
      await ctx.admin.delete({ apiVersion: "v1", kind: "Pod", metadata: { namespace, name: old } });
    } catch {
      failed++;
      watcher.pending.delete(name);
    }
  });
  const achieved = total / ((performance.now() - start) / 1000);
  const result = await watcher.finish(achieved, failed);
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
  const result = await watcher.finish(achieved, failed);
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

  // Change streams, run after run: the floor's Pod replacements, then agentry's changes.
  const total = Math.round(rate * seconds);
  const m = Math.min(n, total);
  const floors: Stream[] = [];
  const agents: Awaited<ReturnType<typeof agentStream>>[] = [];
  for (let r = 0; r < runs; r++) {
    const f = await floorStream(ctx, m, rate, total, timeoutMs);
    floors.push(f);
    const a = await agentStream(ctx, streamOperator, namespace, m, rate, total, r);
    agents.push(a);
    say(
      `steady run ${r + 1}: ${total} changes at ${a.achieved.toFixed(1)}/s: change-to-Ready p99 ${a.p99S.toFixed(2)}s ` +
        `(floor ${f.p99S.toFixed(2)}s), queue wait p99 ≤ ${a.waitP99S}s, ${a.writesPerChange.toFixed(2)} writes per change`,
    );
  }
  const ratio = fig(
    agents.map((a, i) => a.p99S / floors[i]!.p99S),
    "x",
    { goal: "≤ 1.5", note: "agentry change-to-Ready p99 / floor's, run by run" },
  );
  ratio.met = ratio.value <= 1.5 && agents.every((a) => a.unfinished === 0);
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
      floor_change_to_ready_p50_s: figOf(floors, (f) => f.p50S, "s"),
      floor_change_to_ready_p99_s: figOf(floors, (f) => f.p99S, "s"),
      change_to_ready_p50_s: figOf(agents, (a) => a.p50S, "s"),
      change_to_ready_p99_s: figOf(agents, (a) => a.p99S, "s"),
      change_to_ready_p99_ratio: ratio,
      operator_writes_per_change: writesPerChange,
      changes_not_ready_after_120s: figOf(agents, (a) => a.unfinished, "changes"),
      floor_changes_not_ready_after_120s: figOf(floors, (f) => f.unfinished, "changes"),
      changes_failed_to_send: figOf(agents, (a) => a.failed, "changes"),
    },
    notes: [
      "A change sets spec.env, which changes the Pod template: the Pod is replaced. The floor makes the same replacement with a plain client (a new Pod with the new env, then the old one deleted).",
      `The change streams ran on the operator restarted after the resync measurement, at ${streamResyncS ? `--resync-period=${streamResyncS}s` : "its default resync period"}.`,
      byKindNote,
      ...heap,
    ],
  };
}
