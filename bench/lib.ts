// Shared plumbing of the benchmarks: sizes from the environment, statistics, hard time
// caps, namespaces, the operator as a child process, per-process CPU/RSS from /proc, and a
// watcher that records when each object first satisfies a predicate.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "../lib/kube/kubeconfig.ts";
import type { KubeClient } from "../lib/kube/client.ts";
import { isNotFound, type KubeObject } from "../lib/kube/client.ts";
import { createInformer, type SharedInformer } from "../lib/kube/informer.ts";
import { errorMessage, silentLogger } from "../lib/log.ts";
import { LABEL_AGENT } from "../operator/controllers/agentruntime/desired.ts";
import type { ControlPlane } from "../test/harness/controlplane.ts";
import { startOperator, type OperatorProcess } from "../test/harness/operator.ts";
import { waitFor } from "../test/harness/process.ts";
import { repoRoot } from "../test/harness/paths.ts";

export interface BenchContext {
  cp: ControlPlane;
  kc: KubeConfig;
  /** Unthrottled client for setup and observation (never part of a measured path). */
  admin: KubeClient;
  /** Client QPS/burst shared by the floor client and the operator. */
  qps: number;
  burst: number;
  /** Runs registered cleanups when the benchmark ends (reverse order). */
  cleanups: (() => Promise<void> | void)[];
}

/** One figure of a benchmark: the median of its runs, with the runs and an optional goal. */
export interface Figure {
  value: number;
  unit: string;
  runs?: number[];
  goal?: string;
  met?: boolean;
  note?: string;
}

export interface BenchResult {
  name: string;
  title: string;
  date: string;
  sizes: Record<string, number | string>;
  figures: Record<string, Figure>;
  notes: string[];
}

/** A size or setting from AGENTRY_BENCH_<NAME>, else the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[`AGENTRY_BENCH_${name}`];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`AGENTRY_BENCH_${name} must be a positive number, got "${raw}"`);
  return n;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** A figure from several runs: their median, keeping the runs. */
export function fig(runs: number[], unit: string, extra: Partial<Figure> = {}): Figure {
  return { value: round(median(runs), 3), unit, runs: runs.map((r) => round(r, 3)), ...extra };
}

/** A figure from a value of each run: `figOf(runs, (r) => r.p99S, "s")`. */
export function figOf<R>(
  runs: readonly R[],
  value: (run: R) => number,
  unit: string,
  extra: Partial<Figure> = {},
): Figure {
  return fig(runs.map(value), unit, extra);
}

/** A figure with its goal, met when `met(median)` holds. */
export function withGoal(f: Figure, goal: string, met: (value: number) => boolean): Figure {
  return { ...f, goal, met: met(f.value) };
}

/** Rejects when `fn` takes longer than `ms` (a benchmark's hard cap). */
export async function capped<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: over its time cap of ${ms / 1000}s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export function say(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

let nsCounter = 0;
/** Creates a namespace for one run and waits for its default ServiceAccount (Pods need it). */
export async function benchNamespace(ctx: BenchContext, prefix: string): Promise<string> {
  const name = `bench-${prefix}-${process.pid % 10000}-${++nsCounter}`;
  await ctx.admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  await waitFor(`default ServiceAccount in ${name}`, () =>
    ctx.admin.request("GET", `/api/v1/namespaces/${name}/serviceaccounts/default`).then(() => true),
  );
  return name;
}

/**
 * Deletes a run's namespace and waits until it is gone, so the next run starts on a control
 * plane that no longer holds (or is still deleting) this run's objects. Says so and goes on
 * when it takes longer than `timeoutMs`.
 */
export async function dropNamespace(ctx: BenchContext, name: string, timeoutMs = 300_000): Promise<void> {
  const path = `/api/v1/namespaces/${name}`;
  await ctx.admin.request("DELETE", path).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  await waitFor(
    `namespace ${name} gone`,
    () =>
      ctx.admin.request("GET", path).then(
        () => false,
        (err: unknown) => {
          if (isNotFound(err)) return true;
          throw err;
        },
      ),
    { timeoutMs, intervalMs: 500 },
  ).catch((err: unknown) => say(`${errorMessage(err)}; the next run starts beside it`));
}

let builtOnce = false;

/** The operator as the benchmarks run it; `heapDir` holds its heap snapshots when enabled. */
export type BenchOperator = OperatorProcess & { heapDir?: string };

export interface BenchOperatorOptions {
  /** Run the compiled operator whatever AGENTRY_BENCH_COMPILED says. */
  compiled?: boolean;
  /** The operator writes a V8 heap snapshot on SIGUSR2 (bench/heap.ts). */
  heapSnapshots?: boolean;
}

/** The operator (operator/main.ts) as a child process watching `namespaces`, at the bench QPS. */
export async function benchOperator(
  ctx: BenchContext,
  namespaces: string[],
  args: string[] = [],
  podAddressMap?: string,
  options: BenchOperatorOptions = {},
): Promise<BenchOperator> {
  // AGENTRY_BENCH_COMPILED=1: the compiled operator (built here once), as the images run it;
  // by default the sources through tsx, as the tests run it (tsx adds memory of its own).
  const compiled = options.compiled === true || process.env.AGENTRY_BENCH_COMPILED === "1";
  if (compiled && !builtOnce) {
    execFileSync("npm", ["run", "--silent", "build:programs"], { cwd: repoRoot, stdio: "inherit" });
    builtOnce = true;
  }
  const nodeOptions: string[] = [];
  // AGENTRY_BENCH_CPU_PROF=<dir>: the operator writes a V8 CPU profile there when it stops.
  const profDir = process.env.AGENTRY_BENCH_CPU_PROF;
  if (profDir) nodeOptions.push("--cpu-prof", `--cpu-prof-dir=${profDir}`);
  let heapDir: string | undefined;
  if (options.heapSnapshots) {
    heapDir = await mkdtemp(join(tmpdir(), "agentry-bench-heap-"));
    const dir = heapDir;
    ctx.cleanups.push(() => rm(dir, { recursive: true, force: true }));
    nodeOptions.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`);
  }
  const saved = process.env.NODE_OPTIONS;
  if (nodeOptions.length) process.env.NODE_OPTIONS = `${saved ?? ""} ${nodeOptions.join(" ")}`.trim();
  try {
    const operator = await startOperator(
      { after: (fn) => void ctx.cleanups.push(fn) },
      {
        namespaces,
        leaderElect: false,
        compiled,
        // AGENTRY_BENCH_OPERATOR_NODE_ARGS: node flags for the operator only (an experiment).
        nodeArgs: (process.env.AGENTRY_BENCH_OPERATOR_NODE_ARGS ?? "").split(/\s+/).filter(Boolean),
        ...(podAddressMap ? { podAddressMap } : {}),
        args: [
          "--log-level=info",
          `--kube-qps=${ctx.qps}`,
          `--kube-burst=${ctx.burst}`,
          ...(process.env.AGENTRY_BENCH_WORKERS ? [`--workers=${process.env.AGENTRY_BENCH_WORKERS}`] : []),
          ...args,
        ],
      },
    );
    // Runs before startOperator's SIGKILL cleanup: a clean exit writes the profile.
    if (profDir) ctx.cleanups.push(() => operator.kill("SIGTERM").then(() => undefined));
    return { ...operator, ...(heapDir ? { heapDir } : {}) };
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A process's resident memory in MiB: anonymous (heap, buffers) and file-backed (code, mapped files). */
export function rssParts(pid: number | undefined): { anon: number; file: number } {
  if (!pid) return { anon: NaN, file: NaN };
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { anon: kb("RssAnon"), file: kb("RssFile") };
}

/** CPU use of the control-plane components, the operator and this process over a span. */
export class CpuMeter {
  private readonly pids: Record<string, number | undefined>;
  private readonly start: Record<string, number>;
  private readonly startSelf = process.cpuUsage();
  private readonly t0 = performance.now();

  constructor(ctx: BenchContext, extra: Record<string, number | undefined> = {}) {
    this.pids = {};
    for (const c of ["etcd", "kube-apiserver", "kwok", "kube-scheduler", "kube-controller-manager"])
      this.pids[c] = ctx.cp.component(c).pid;
    Object.assign(this.pids, extra);
    this.start = Object.fromEntries(Object.entries(this.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  }

  /** Cores used on average by each process since the meter started (1 = one full core). */
  cores(): Record<string, number> {
    const wall = (performance.now() - this.t0) / 1000;
    return Object.fromEntries(Object.entries(this.seconds()).map(([k, s]) => [k, round(s / wall)]));
  }

  /** CPU seconds used by each process since the meter started. */
  seconds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, pid] of Object.entries(this.pids)) out[k] = cpuSeconds(pid) - this.start[k]!;
    const self = process.cpuUsage(this.startSelf);
    out["bench"] = (self.user + self.system) / 1e6;
    return out;
  }
}

/** The busiest process of a CpuMeter reading, with its share of a core. */
export function busiest(cores: Record<string, number>): string {
  const [name, c] = Object.entries(cores).sort((a, b) => b[1] - a[1])[0] ?? ["?", 0];
  const total = Object.values(cores).reduce((a, b) => a + b, 0);
  return `${name} (${c.toFixed(2)} cores; all processes ${total.toFixed(2)} of the machine's cores)`;
}

/** An informer of the benchmark's own (unthrottled client) that shows it every add and update. */
export class BenchWatch {
  private readonly informer: SharedInformer<KubeObject>;

  constructor(
    ctx: BenchContext,
    apiVersion: string,
    kind: string,
    namespaces: string[],
    see: (o: KubeObject) => void,
    labelSelector?: string,
  ) {
    this.informer = createInformer<KubeObject>(
      ctx.admin,
      { apiVersion, kind, ...(labelSelector ? { labelSelector } : {}) },
      namespaces,
      silentLogger(),
    );
    this.informer.on("add", see);
    this.informer.on("update", see);
    ctx.cleanups.push(() => this.informer.stop());
  }

  async start(): Promise<void> {
    await this.informer.start();
    await this.informer.waitForSync();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }
}

/**
 * Watches a kind in some namespaces (unthrottled client) and records, per object name (or
 * `nameOf`), the first moment `ready(obj)` held. `waitAll(n)` resolves when n names are recorded.
 */
export class ReadyWatcher extends BenchWatch {
  readonly readyAt = new Map<string, number>();

  constructor(
    ctx: BenchContext,
    apiVersion: string,
    kind: string,
    namespaces: string[],
    ready: (o: KubeObject) => boolean,
    /** The name an object is recorded under (default: its own). */
    nameOf: (o: KubeObject) => string | undefined = (o) => o.metadata.name,
    /** Only the objects it selects (default: all of the kind in `namespaces`). */
    labelSelector?: string,
  ) {
    super(
      ctx,
      apiVersion,
      kind,
      namespaces,
      (o) => {
        const key = `${o.metadata.namespace}/${nameOf(o)}`;
        if (!this.readyAt.has(key) && ready(o)) this.readyAt.set(key, performance.now());
      },
      labelSelector,
    );
  }

  async waitAll(n: number, timeoutMs: number): Promise<void> {
    await waitFor(`${n} ready`, () => this.readyAt.size >= n, { timeoutMs, intervalMs: 20 });
  }

  /**
   * Waits for these objects (`namespace/name`) to be ready, whatever else of the watched
   * namespaces is (a run's own objects beside an earlier run's), and gives their time from
   * `createdAt` to ready, in seconds.
   */
  async latenciesS(createdAt: ReadonlyMap<string, number>, timeoutMs: number): Promise<number[]> {
    const keys = [...createdAt.keys()];
    await waitFor(`${keys.length} ready`, () => keys.every((k) => this.readyAt.has(k)), {
      timeoutMs,
      intervalMs: 20,
    });
    return latencies(createdAt, this.readyAt);
  }
}

/** Seconds from each object's creation to its ready time (NaN for one not ready). */
export function latencies(
  created: ReadonlyMap<string, number>,
  readyAt: ReadonlyMap<string, number>,
): number[] {
  return [...created].map(([k, t]) => ((readyAt.get(k) ?? NaN) - t) / 1000);
}

export const conditionTrue = (o: KubeObject, type: string): boolean => {
  const conds = (o["status"] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions;
  return conds?.some((c) => c.type === type && c.status === "True") ?? false;
};

/** A histogram's bucket counts, so two readings can be subtracted. */
export function histogramBuckets(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const m = /le="([^"]+)"[^}]*\}\s+([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const le = m[1] === "+Inf" ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** Upper bucket bound holding quantile q of the observations between two readings. */
export function bucketQuantile(after: Map<number, number>, before: Map<number, number>, q: number): number {
  const sorted = [...after.entries()]
    .map(([le, c]) => [le, c - (before.get(le) ?? 0)] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return NaN;
  for (const [le, count] of sorted) if (count >= q * total) return le;
  return Infinity;
}

/** An agent Pod's AgentRuntime (its label): the Pod itself is named after its template. */
export const agentOfPod = (o: KubeObject): string | undefined => o.metadata.labels?.[LABEL_AGENT];
