// Benchmarks 1 and 2: the floor (a plain client creating N Pods + N Services at the bench
// QPS, until every Pod is Ready on kwok) against agentry (N AgentRuntimes created at the
// same QPS, the operator at the same QPS making Service + Pod + status, until every
// AgentRuntime reports Ready), run after run, side by side.
import { ApiError, KubeClient, type KubeObject } from "../lib/kube/client.ts";
import type { OperatorProcess } from "../test/harness/operator.ts";
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
  latencies,
  percentile,
  pool,
  ReadyWatcher,
  round,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

const IMAGE = "registry.example/agent:1";
const CONCURRENCY = 64;

interface RunFigures {
  allReadyS: number;
  createsDoneS: number;
  p50S: number;
  p99S: number;
  bottleneck: string;
  cores: Record<string, number>;
}

/** What the floor creates for one agent: a plain Service and Pod, as the operator would. */
export function floorObjects(namespace: string, name: string): KubeObject[] {
  const labels = { app: name, "bench.agentry.dev/floor": "true" };
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace, labels },
      spec: { selector: labels, ports: [{ name: "http", port: 8080, targetPort: "http", protocol: "TCP" }] },
    },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace, labels },
      spec: {
        containers: [
          { name: "agent", image: IMAGE, ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] },
        ],
      },
    },
  ];
}

/**
 * An AgentRuntime as the benchmarks create it: without the managed NetworkPolicy (on by
 * default), so it makes what the floor makes, a Service and a Pod. With the policy, each
 * AgentRuntime costs one write more (the NetworkPolicy's apply).
 */
export const agentRuntime = (
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name, namespace },
  spec: { image: IMAGE, networkPolicy: { enabled: false }, ...spec },
});

/** Creates retried after a timeout or a 5xx/429 answer (an overloaded, shared machine). */
export const createRetries = { count: 0 };

export async function createRetrying(client: KubeClient, o: KubeObject): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.create(o);
      return;
    } catch (err) {
      const status = err instanceof ApiError ? err.status : -1;
      // A retried create may find the object its first attempt made after all.
      if (attempt > 1 && status === 409) return;
      if (attempt >= 4 || !(status === 0 || status === 429 || status >= 500)) throw err;
      createRetries.count++;
    }
  }
}

/** Creates `objects(i)` for i < n through `client`, records when each last object was created. */
export async function createAll(client: KubeClient, n: number, objects: (i: number) => KubeObject[]) {
  const created = new Map<string, number>();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    CONCURRENCY,
    async (i) => {
      for (const o of objects(i)) {
        await createRetrying(client, o);
        created.set(`${o.metadata.namespace}/${o.metadata.name}`, performance.now());
      }
    },
  );
  return created;
}

async function floorRun(ctx: BenchContext, n: number, timeoutMs: number): Promise<RunFigures> {
  const namespace = await benchNamespace(ctx, "floor");
  const client = new KubeClient(ctx.kc, { qps: ctx.qps, burst: ctx.burst, userAgent: "bench-floor" });
  const watcher = new ReadyWatcher(ctx, "v1", "Pod", [namespace], (o) => conditionTrue(o, "Ready"));
  await watcher.start();
  const meter = new CpuMeter(ctx);
  const t0 = performance.now();
  const created = await createAll(client, n, (i) => floorObjects(namespace, `w-${i}`));
  const createsDoneS = (performance.now() - t0) / 1000;
  await watcher.waitAll(n, timeoutMs);
  const allReadyS = (Math.max(...watcher.readyAt.values()) - t0) / 1000;
  const cores = meter.cores();
  await watcher.stop();
  const lat = latencies(created, watcher.readyAt);
  return {
    allReadyS,
    createsDoneS,
    p50S: percentile(lat, 50),
    p99S: percentile(lat, 99),
    bottleneck: busiest(cores),
    cores,
  };
}

async function agentRun(
  ctx: BenchContext,
  operator: OperatorProcess,
  namespace: string,
  n: number,
  timeoutMs: number,
): Promise<RunFigures & { operatorRps: number; writesPerAgent: number }> {
  const client = new KubeClient(ctx.kc, { qps: ctx.qps, burst: ctx.burst, userAgent: "bench-user" });
  const watcher = new ReadyWatcher(ctx, "agentry.dev/v1alpha1", "AgentRuntime", [namespace], (o) =>
    conditionTrue(o, "Ready"),
  );
  await watcher.start();
  const requests0 = await operator.counter("agentry_kube_requests_total");
  const writes0 = await operator.counter("agentry_writes_total");
  const meter = new CpuMeter(ctx, { operator: operator.child.pid });
  const t0 = performance.now();
  const created = await createAll(client, n, (i) => [agentRuntime(namespace, `a-${i}`)]);
  const createsDoneS = (performance.now() - t0) / 1000;
  await watcher.waitAll(n, timeoutMs);
  const end = Math.max(...watcher.readyAt.values());
  const allReadyS = (end - t0) / 1000;
  const cores = meter.cores();
  const operatorRps = ((await operator.counter("agentry_kube_requests_total")) - requests0) / allReadyS;
  const writesPerAgent = ((await operator.counter("agentry_writes_total")) - writes0) / n;
  await watcher.stop();
  const lat = latencies(created, watcher.readyAt);
  const bottleneck =
    operatorRps >= 0.85 * ctx.qps
      ? `operator client rate limit (${round(operatorRps, 0)} req/s of --kube-qps=${ctx.qps})`
      : busiest(cores);
  return {
    allReadyS,
    createsDoneS,
    p50S: percentile(lat, 50),
    p99S: percentile(lat, 99),
    bottleneck,
    cores,
    operatorRps,
    writesPerAgent,
  };
}

export async function createBench(ctx: BenchContext): Promise<BenchResult> {
  const n = envNumber("N", 300);
  const runs = envNumber("RUNS", 3);
  const timeoutMs = envNumber("RUN_TIMEOUT_S", 300) * 1000;
  const arNamespaces: string[] = [];
  for (let r = 0; r < runs; r++) arNamespaces.push(await benchNamespace(ctx, "ar"));
  const operator = await benchOperator(ctx, arNamespaces);
  const floors: RunFigures[] = [];
  const agents: Awaited<ReturnType<typeof agentRun>>[] = [];
  for (let r = 0; r < runs; r++) {
    const f = await capped("floor run", timeoutMs + 60_000, () => floorRun(ctx, n, timeoutMs));
    say(`floor run ${r + 1}: ${n} Pods+Services, all Ready in ${f.allReadyS.toFixed(2)}s (${f.bottleneck})`);
    floors.push(f);
    const a = await capped("agentry run", timeoutMs + 60_000, () =>
      agentRun(ctx, operator, arNamespaces[r]!, n, timeoutMs),
    );
    say(`agentry run ${r + 1}: ${n} AgentRuntimes all Ready in ${a.allReadyS.toFixed(2)}s (${a.bottleneck})`);
    agents.push(a);
  }
  const ratios = agents.map((a, i) => a.allReadyS / floors[i]!.allReadyS);
  const ratio = fig(ratios, "x", { goal: "≤ 1.5", met: undefined });
  ratio.met = ratio.value <= 1.5;
  return {
    name: "create",
    title: "Create to Ready: plain Pods + Services (floor) vs AgentRuntimes",
    date: new Date().toISOString(),
    sizes: {
      N: n,
      runs,
      clientQps: ctx.qps,
      operatorWorkers: process.env.AGENTRY_BENCH_WORKERS ?? "default",
      clientBurst: ctx.burst,
      concurrency: CONCURRENCY,
    },
    figures: {
      floor_all_ready_s: figOf(floors, (f) => f.allReadyS, "s"),
      floor_creates_done_s: figOf(floors, (f) => f.createsDoneS, "s"),
      floor_create_to_ready_p50_s: figOf(floors, (f) => f.p50S, "s"),
      floor_create_to_ready_p99_s: figOf(floors, (f) => f.p99S, "s"),
      agentry_all_ready_s: figOf(agents, (a) => a.allReadyS, "s"),
      agentry_creates_done_s: figOf(agents, (a) => a.createsDoneS, "s"),
      agentry_create_to_ready_p50_s: figOf(agents, (a) => a.p50S, "s"),
      agentry_create_to_ready_p99_s: figOf(agents, (a) => a.p99S, "s"),
      ratio_all_ready: ratio,
      operator_requests_per_s: figOf(agents, (a) => a.operatorRps, "req/s"),
      operator_writes_per_agent: figOf(agents, (a) => a.writesPerAgent, "writes"),
    },
    notes: [
      `Creates retried after a timeout or an overload answer: ${createRetries.count}.`,
      ...floors.map(
        (f, i) => `floor run ${i + 1}: busiest ${f.bottleneck}; cores ${JSON.stringify(f.cores)}`,
      ),
      ...agents.map(
        (a, i) => `agentry run ${i + 1}: bottleneck ${a.bottleneck}; cores ${JSON.stringify(a.cores)}`,
      ),
    ],
  };
}
