// Benchmark: paced creation, an open loop (objects per second, as users and pipelines
// create them), beside the closed loop of create.ts. For each rate×count of
// AGENTRY_BENCH_PACED (default "10x300,75x1000"), run after run, side by side: the floor
// (a plain client creating a Pod and a Service per object at that pace) and agentry
// (AgentRuntimes at that pace, a fresh compiled operator watching only that run's
// namespace, so its CPU and memory are this run's); each run's namespace is deleted, and
// gone, before the next run starts. Figures: create-to-Ready p50/p99,
// all-Ready time and its ratio to the floor, operator CPU and writes and Events per
// AgentRuntime, operator RSS at its peak and once settled with the run's objects cached,
// and a heap snapshot summary of the largest run.
import { KubeClient, type KubeObject } from "../lib/kube/client.ts";
import { settledWrites } from "../test/harness/operator.ts";
import { waitFor } from "../test/harness/process.ts";
import { agentRuntime, createRetrying, floorObjects } from "./create.ts";
import { heapSummary } from "./heap.ts";
import {
  agentOfPod,
  benchNamespace,
  benchOperator,
  busiest,
  conditionTrue,
  CpuMeter,
  cpuSeconds,
  dropNamespace,
  envNumber,
  fig,
  withGoal,
  figOf,
  latencies,
  percentile,
  ReadyWatcher,
  rssMiB,
  rssParts,
  say,
  type BenchContext,
  type BenchOperator,
  type BenchResult,
  type Figure,
} from "./lib.ts";

interface Pace {
  rate: number;
  n: number;
}

interface RunFigures {
  p50S: number;
  p99S: number;
  /** p50 of a Pod's first watch event → the Pod Ready (the scheduler's and kwok's part), seconds. */
  podStageS: number;
  allReadyS: number;
  /** How far the sender fell behind its schedule at worst (the client's own limits). */
  behindS: number;
  bottleneck: string;
}

interface AgentFigures extends RunFigures {
  cpuMsPerAgent: number;
  /** The same over the second half of the creations only: the operator warm (its code compiled). */
  warmCpuMsPerAgent: number;
  writesPerAgent: number;
  eventsPerAgent: number;
  peakRssMiB: number;
  settledRssMiB: number;
  /** The settled RSS's anonymous (V8 heap, buffers) and file-backed (code) parts, MiB. */
  settledRssParts: { anon: number; file: number };
  heap: string[];
  /** The operator's writes by kind and verb. */
  writes: string;
  /** Reconciles of the AgentRuntime controller per AgentRuntime, until settled. */
  passesPerAgent: number;
  /** Where create-to-Ready goes, p50 of each stage in seconds (see `stages`). */
  stages: Record<Stage, number>;
}

/** The stages of one AgentRuntime's create-to-Ready, as the bench's watches see them: the
 * operator's reaction (the AgentRuntime's create answered → its Pod's first watch event), the
 * Pod (first event → Ready, the same work as the floor's Pod) and the status (the Pod Ready →
 * the AgentRuntime Ready). */
type Stage = "reaction" | "pod" | "status";

/** Paces from AGENTRY_BENCH_PACED: "rate x count" pairs separated by commas. */
export function paces(spec = process.env.AGENTRY_BENCH_PACED ?? "10x300,75x1000"): Pace[] {
  return spec.split(",").map((p) => {
    const m = /^\s*(\d+(?:\.\d+)?)x(\d+)\s*$/.exec(p);
    if (!m) throw new Error(`AGENTRY_BENCH_PACED: "${p}" is not <objects per second>x<count>`);
    return { rate: Number(m[1]), n: Number(m[2]) };
  });
}

/** Calls fn(i) for i < n at `rate` per second without waiting for earlier calls (an open loop). */
export async function paced(n: number, rate: number, fn: (i: number) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  let behindMs = 0;
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else behindMs = Math.max(behindMs, -wait);
    inflight.push(fn(i));
  }
  await Promise.all(inflight);
  return behindMs / 1000;
}

async function floorRun(ctx: BenchContext, { rate, n }: Pace, timeoutMs: number): Promise<RunFigures> {
  const namespace = await benchNamespace(ctx, "pfloor");
  const client = new KubeClient(ctx.kc, { qps: ctx.qps, burst: ctx.burst, userAgent: "bench-floor" });
  const watcher = new ReadyWatcher(ctx, "v1", "Pod", [namespace], (o) => conditionTrue(o, "Ready"));
  const podSeen = new ReadyWatcher(ctx, "v1", "Pod", [namespace], () => true);
  await Promise.all([watcher.start(), podSeen.start()]);
  const meter = new CpuMeter(ctx);
  const created = new Map<string, number>();
  const t0 = performance.now();
  const behindS = await paced(n, rate, async (i) => {
    const [service, pod] = floorObjects(namespace, `w-${i}`);
    // The Pod's Ready is timed from its own create (the Service's create runs beside it).
    await Promise.all([
      createRetrying(client, service!),
      createRetrying(client, pod!).then(() => void created.set(`${namespace}/w-${i}`, performance.now())),
    ]);
  });
  await watcher.waitAll(n, timeoutMs);
  const allReadyS = (Math.max(...watcher.readyAt.values()) - t0) / 1000;
  const bottleneck = busiest(meter.cores());
  await Promise.all([watcher.stop(), podSeen.stop()]);
  await dropNamespace(ctx, namespace);
  const lat = latencies(created, watcher.readyAt);
  return {
    p50S: percentile(lat, 50),
    p99S: percentile(lat, 99),
    podStageS: stageP50(podSeen.readyAt, watcher.readyAt),
    allReadyS,
    behindS,
    bottleneck,
  };
}

/** p50 of the time from `from` to `to` of the objects both saw, in seconds. */
function stageP50(from: Map<string, number>, to: Map<string, number>): number {
  return percentile(latencies(from, to).filter(Number.isFinite), 50);
}

async function agentRun(
  ctx: BenchContext,
  { rate, n }: Pace,
  timeoutMs: number,
  heap: boolean,
): Promise<AgentFigures> {
  const namespace = await benchNamespace(ctx, "paced");
  const operator = await benchOperator(ctx, [namespace], [], undefined, {
    compiled: true,
    heapSnapshots: heap,
  });
  await operatorStarted(operator);
  const pid = operator.child.pid;
  const client = new KubeClient(ctx.kc, { qps: ctx.qps, burst: ctx.burst, userAgent: "bench-user" });
  const watcher = new ReadyWatcher(ctx, "agentry.dev/v1alpha1", "AgentRuntime", [namespace], (o) =>
    conditionTrue(o, "Ready"),
  );
  await watcher.start();
  const podSeen = new ReadyWatcher(ctx, "v1", "Pod", [namespace], () => true, agentOfPod);
  const podReady = new ReadyWatcher(
    ctx,
    "v1",
    "Pod",
    [namespace],
    (o) => conditionTrue(o, "Ready"),
    agentOfPod,
  );
  await Promise.all([podSeen.start(), podReady.start()]);
  let peakRssMiB = rssMiB(pid);
  const sampler = setInterval(() => (peakRssMiB = Math.max(peakRssMiB, rssMiB(pid))), 250);
  const meter = new CpuMeter(ctx, { operator: pid });
  const cpu0 = cpuSeconds(pid);
  const passes = () => operator.counter("controller_runtime_reconcile_total", { controller: "agentruntime" });
  const passes0 = await passes();
  const created = new Map<string, number>();
  const t0 = performance.now();
  let allReadyS: number;
  let behindS: number;
  let cpu1: number;
  let cpuHalf = NaN;
  let bottleneck: string;
  const half = Math.floor(n / 2);
  try {
    behindS = await paced(n, rate, async (i) => {
      if (i === half) cpuHalf = cpuSeconds(pid);
      await createRetrying(client, agentRuntime(namespace, `a-${i}`));
      created.set(`${namespace}/a-${i}`, performance.now());
    });
    await watcher.waitAll(n, timeoutMs);
    allReadyS = (Math.max(...watcher.readyAt.values()) - t0) / 1000;
    cpu1 = cpuSeconds(pid);
    bottleneck = busiest(meter.cores());
  } finally {
    clearInterval(sampler);
    await Promise.all([watcher.stop(), podSeen.stop(), podReady.stop()]);
  }
  // Settled: the operator's writes stopped; then its memory with everything cached.
  const last = await settledWrites(operator, "agentruntime", { intervalMs: 1000 });
  const settledRssMiB = rssMiB(pid);
  const settledRssParts = rssParts(pid);
  const events = await ctx.admin.list<KubeObject>("v1", "Event", namespace);
  const ours = events.items.filter(
    (e) => (e["source"] as { component?: string } | undefined)?.component === "agentry-operator",
  ).length;
  const byKind = await writesByKind(operator, "agentruntime");
  const passesPerAgent = ((await passes()) - passes0) / n;
  const heapNotes = heap ? await heapSummary(operator, `operator with ${n} AgentRuntimes cached`) : [];
  // A CPU profile is written on a clean exit only.
  await operator.kill(process.env.AGENTRY_BENCH_CPU_PROF ? "SIGTERM" : "SIGKILL");
  await dropNamespace(ctx, namespace);
  const lat = latencies(created, watcher.readyAt);
  // The Pods recorded under their AgentRuntime's name (their label).
  const podStageS = stageP50(podSeen.readyAt, podReady.readyAt);
  return {
    p50S: percentile(lat, 50),
    p99S: percentile(lat, 99),
    podStageS,
    stages: {
      reaction: stageP50(created, podSeen.readyAt),
      pod: podStageS,
      status: stageP50(podReady.readyAt, watcher.readyAt),
    },
    allReadyS,
    behindS,
    bottleneck,
    cpuMsPerAgent: ((cpu1 - cpu0) * 1000) / n,
    warmCpuMsPerAgent: ((cpu1 - cpuHalf) * 1000) / (n - half),
    passesPerAgent,
    writesPerAgent: last / n,
    eventsPerAgent: ours / n,
    peakRssMiB,
    settledRssMiB,
    settledRssParts,
    heap: heapNotes,
    writes: byKind,
  };
}

/** Waits until the operator's AgentRuntime controller runs (its caches synced, its workers started). */
export async function operatorStarted(operator: BenchOperator): Promise<void> {
  await waitFor(
    "the operator's AgentRuntime controller to start",
    () => operator.logs.some((l) => l.message === "controller started" && l.controller === "agentruntime"),
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

/** The operator's writes so far by "Kind/verb" (from agentry_writes_total). */
export async function writeCounts(operator: BenchOperator, controller: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await operator.metrics()).split("\n")) {
    const m = /^agentry_writes_total\{([^}]*)\}\s+(\d+)/.exec(line);
    if (!m || !m[1]!.includes(`controller="${controller}"`)) continue;
    const kind = /kind="([^"]*)"/.exec(m[1]!)?.[1];
    const verb = /verb="([^"]*)"/.exec(m[1]!)?.[1];
    out.set(`${kind}/${verb}`, Number(m[2]));
  }
  return out;
}

/** The operator's writes by kind and verb, as "Kind/verb n". */
export async function writesByKind(operator: BenchOperator, controller: string): Promise<string> {
  return [...(await writeCounts(operator, controller))].map(([k, n]) => `${k} ${n}`).join(", ");
}

const STAGE_NOTES: Record<Stage, string> = {
  reaction: "p50: the AgentRuntime's create answered → its Pod's first watch event (the operator's reaction)",
  pod: "p50: the Pod's first watch event → the Pod Ready (scheduler and kwok, as for the floor's Pods)",
  status: "p50: the Pod Ready → the AgentRuntime Ready (the operator's status write)",
};

export async function pacedBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const timeoutMs = envNumber("RUN_TIMEOUT_S", 300) * 1000;
  const all = paces();
  const largest = all.reduce((a, b) => (b.n > a.n ? b : a));
  const figures: Record<string, Figure> = {};
  const notes: string[] = [
    "Each run (floor or agentry) has a namespace of its own, deleted and gone before the next run starts: no run shares the control plane with an earlier run's objects.",
  ];
  for (const pace of all) {
    const floors: RunFigures[] = [];
    const agents: AgentFigures[] = [];
    for (let r = 0; r < runs; r++) {
      const f = await floorRun(ctx, pace, timeoutMs);
      say(
        `paced ${pace.rate}/s floor run ${r + 1}: p50 ${f.p50S}s p99 ${f.p99S}s, all Ready ${f.allReadyS.toFixed(1)}s`,
      );
      floors.push(f);
      const a = await agentRun(ctx, pace, timeoutMs, r === 0 && pace === largest);
      say(
        `paced ${pace.rate}/s agentry run ${r + 1}: p50 ${a.p50S}s p99 ${a.p99S}s, all Ready ${a.allReadyS.toFixed(1)}s, ` +
          `${a.cpuMsPerAgent.toFixed(1)} ms CPU, ${a.writesPerAgent} writes and ${a.passesPerAgent} passes per AgentRuntime, RSS ${a.settledRssMiB.toFixed(0)} MiB`,
      );
      agents.push(a);
      notes.push(
        `${pace.rate}/s run ${r + 1}: floor busiest ${f.bottleneck}, sender behind by ≤ ${f.behindS.toFixed(2)}s; ` +
          `agentry busiest ${a.bottleneck}, sender behind by ≤ ${a.behindS.toFixed(2)}s; operator writes ${a.writes}; ` +
          `settled RSS ${a.settledRssMiB.toFixed(1)} MiB = ${a.settledRssParts.anon.toFixed(1)} anonymous + ${a.settledRssParts.file.toFixed(1)} file-backed`,
        ...a.heap,
      );
    }
    const p = `r${pace.rate}_n${pace.n}`;
    const ms = (xs: number[]) => figOf(xs, (x) => x * 1000, "ms");
    const at10 = pace.rate === 10;
    const at75 = pace.rate === 75;
    const agentP50 = ms(agents.map((a) => a.p50S));
    const agentP99 = ms(agents.map((a) => a.p99S));
    figures[`${p}_floor_create_to_ready_p50_ms`] = ms(floors.map((f) => f.p50S));
    figures[`${p}_floor_create_to_ready_p99_ms`] = ms(floors.map((f) => f.p99S));
    figures[`${p}_agentry_create_to_ready_p50_ms`] = at10
      ? withGoal(agentP50, "≤ 30", (v) => v <= 30)
      : agentP50;
    figures[`${p}_agentry_create_to_ready_p99_ms`] = at10
      ? withGoal(agentP99, "≤ 60", (v) => v <= 60)
      : agentP99;
    const p50OfP99 = fig(
      agents.map((a) => a.p50S / a.p99S),
      "x",
      { note: "agentry p50 / p99, per run" },
    );
    figures[`${p}_agentry_p50_over_p99`] = at75 ? withGoal(p50OfP99, "≤ 0.5", (v) => v <= 0.5) : p50OfP99;
    figures[`${p}_floor_stage_pod_p50_ms`] = fig(
      floors.map((f) => f.podStageS * 1000),
      "ms",
      {
        note: "p50: the floor's Pod's first watch event → the Pod Ready (its create answered comes in between)",
      },
    );
    for (const st of ["reaction", "pod", "status"] as const)
      figures[`${p}_agentry_stage_${st}_p50_ms`] = fig(
        agents.map((a) => a.stages[st] * 1000),
        "ms",
        { note: STAGE_NOTES[st] },
      );
    figures[`${p}_floor_all_ready_s`] = figOf(floors, (f) => f.allReadyS, "s");
    figures[`${p}_agentry_all_ready_s`] = figOf(agents, (a) => a.allReadyS, "s");
    const ratio = fig(
      agents.map((a, i) => a.allReadyS / floors[i]!.allReadyS),
      "x",
      { note: "agentry all Ready / floor all Ready, run by run" },
    );
    figures[`${p}_all_ready_ratio`] = at75 ? withGoal(ratio, "≤ 1.1", (v) => v <= 1.1) : ratio;
    figures[`${p}_operator_cpu_ms_per_agent`] = withGoal(
      figOf(agents, (a) => a.cpuMsPerAgent, "ms"),
      "≤ 6",
      (v) => v <= 6,
    );
    figures[`${p}_operator_warm_cpu_ms_per_agent`] = fig(
      agents.map((a) => a.warmCpuMsPerAgent),
      "ms",
      {
        note: "from the creation of the second half's first AgentRuntime to all Ready, per AgentRuntime of that half: the operator's code compiled by then",
      },
    );
    figures[`${p}_operator_reconciles_per_agent`] = figOf(agents, (a) => a.passesPerAgent, "passes");
    figures[`${p}_operator_writes_per_agent`] = withGoal(
      figOf(agents, (a) => a.writesPerAgent, "writes"),
      "= 3",
      (v) => v === 3,
    );
    figures[`${p}_operator_events_per_agent`] = withGoal(
      figOf(agents, (a) => a.eventsPerAgent, "events"),
      "= 0",
      (v) => v === 0,
    );
    figures[`${p}_operator_peak_rss_mib`] = figOf(agents, (a) => a.peakRssMiB, "MiB");
    const settled = fig(
      agents.map((a) => a.settledRssMiB),
      "MiB",
      { note: `settled, with the run's ${pace.n} AgentRuntimes, Pods and Services cached` },
    );
    figures[`${p}_operator_settled_rss_mib`] =
      pace.n >= 1000 ? withGoal(settled, "≤ 100", (v) => v <= 100) : settled;
  }
  return {
    name: "paced",
    title: "Paced creation (objects per second): plain Pods + Services (floor) vs AgentRuntimes",
    date: new Date().toISOString(),
    sizes: {
      paces: all.map((p) => `${p.rate}/s x ${p.n}`).join(" and "),
      runs,
      clientQps: ctx.qps,
      clientBurst: ctx.burst,
      operator: "compiled, one per run, watching only the run's namespace",
      agentRuntimes: "image only, managed NetworkPolicy off (a Service and a Pod, as the floor)",
      operatorWorkers: process.env.AGENTRY_BENCH_WORKERS ?? "default",
    },
    figures,
    notes,
  };
}
