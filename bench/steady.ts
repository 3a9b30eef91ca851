// Benchmark 3: steady state. N AgentRuntimes (with their Pods and Services) in the
// operator's caches: its RSS, the writes a full resync makes (goal 0), then a stream of
// spec changes at a fixed rate: work-queue wait p99 and change-to-Ready p99.
import type { KubeObject } from "../lib/kube/client.ts";
import { createInformer } from "../lib/kube/informer.ts";
import { silentLogger } from "../lib/log.ts";
import { waitFor } from "../test/harness/process.ts";
import { agentRuntime, createAll } from "./create.ts";
import {
  benchNamespace,
  benchOperator,
  bucketQuantile,
  conditionTrue,
  envNumber,
  histogramBuckets,
  percentile,
  ReadyWatcher,
  round,
  rssMiB,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

const WAIT = "workqueue_queue_duration_seconds";

export async function steadyBench(ctx: BenchContext): Promise<BenchResult> {
  const n = envNumber("STEADY_N", 500);
  const rate = envNumber("CHANGE_RATE", 50);
  const seconds = envNumber("CHANGE_SECONDS", 20);
  const resyncS = envNumber("RESYNC_S", 30);
  const timeoutMs = envNumber("RUN_TIMEOUT_S", 300) * 1000;
  const namespace = await benchNamespace(ctx, "steady");
  const operator = await benchOperator(ctx, [namespace], [`--resync-period=${resyncS}s`]);
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
  let before = await writes();
  await waitFor(
    "writes to settle",
    async () => {
      const now = await writes();
      const settled = now === before;
      before = now;
      return settled;
    },
    { intervalMs: 3000, timeoutMs },
  );
  const r0 = await reconciles();
  await waitFor("a full resync", async () => (await reconciles()) >= r0 + n, {
    timeoutMs: (resyncS + 120) * 1000,
    intervalMs: 500,
  });
  const resyncWrites = (await writes()) - before;
  const rss = rssMiB(operator.child.pid);
  say(`steady: RSS ${rss.toFixed(0)} MiB; a full resync wrote ${resyncWrites} times`);

  // Changes: bump an env var on AgentRuntime i % n at `rate`/s; Ready again at the new generation.
  const pending = new Map<string, { generation: number; at: number }>();
  const lat: number[] = [];
  const informer = createInformer<KubeObject>(
    ctx.admin,
    { apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime" },
    [namespace],
    silentLogger(),
  );
  informer.on("update", (o) => {
    const p = pending.get(o.metadata.name!);
    const observed = (o["status"] as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0;
    if (p && observed >= p.generation && conditionTrue(o, "Ready")) {
      lat.push((performance.now() - p.at) / 1000);
      pending.delete(o.metadata.name!);
    }
  });
  ctx.cleanups.push(() => informer.stop());
  await informer.start();
  await informer.waitForSync();
  const wait0 = histogramBuckets(await operator.metrics(), WAIT, { name: "agentruntime" });
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  let failed = 0;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const delay = due - performance.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const name = `s-${i % n}`;
    inflight.push(
      ctx.admin
        .mergePatch<KubeObject>(
          { apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime", metadata: { name, namespace } },
          { spec: { env: [{ name: "BENCH_REVISION", value: String(i) }] } },
        )
        .then(
          (o) => void pending.set(name, { generation: o.metadata.generation!, at: performance.now() }),
          () => void failed++,
        ),
    );
  }
  await Promise.all(inflight);
  const achieved = total / ((performance.now() - start) / 1000);
  await waitFor("changes to be Ready", () => pending.size === 0, {
    timeoutMs: 120_000,
    intervalMs: 100,
  }).catch(() => undefined);
  const unfinished = pending.size;
  const wait1 = histogramBuckets(await operator.metrics(), WAIT, { name: "agentruntime" });
  const waitP99 = bucketQuantile(wait1, wait0, 0.99);
  const p99 = percentile(lat, 99);
  say(
    `steady: ${total} changes at ${achieved.toFixed(1)}/s: change-to-Ready p99 ${p99.toFixed(2)}s, queue wait p99 ≤ ${waitP99}s`,
  );
  const inTime = unfinished
    ? `of the ${lat.length} changes Ready within 120 s of the last one; the other ${unfinished} were not`
    : "";
  return {
    name: "steady",
    title: "Steady state: cached AgentRuntimes, resync, changes under load",
    date: new Date().toISOString(),
    sizes: {
      agentRuntimes: n,
      changesPerSecond: rate,
      changeSeconds: seconds,
      resyncPeriodS: resyncS,
      clientQps: ctx.qps,
      operatorWorkers: process.env.AGENTRY_BENCH_WORKERS ?? "default",
    },
    figures: {
      fill_to_all_ready_s: {
        value: round(fillS),
        unit: "s",
        note: "creates unthrottled; operator at the bench QPS",
      },
      operator_rss_mib: { value: round(rss, 0), unit: "MiB", goal: "≤ 300", met: rss <= 300 },
      full_resync_writes: { value: resyncWrites, unit: "writes", goal: "0", met: resyncWrites === 0 },
      changes_per_s_achieved: { value: round(achieved, 1), unit: "changes/s" },
      workqueue_wait_p99_s: {
        value: waitP99,
        unit: "s",
        goal: "≤ 1",
        met: waitP99 <= 1,
        note:
          waitP99 === Infinity
            ? "above the histogram's largest bucket (30 s)"
            : "upper bound of the histogram bucket holding the p99",
      },
      change_to_ready_p50_s: { value: round(percentile(lat, 50), 3), unit: "s", note: inTime },
      change_to_ready_p99_s: {
        value: round(p99, 3),
        unit: "s",
        goal: "≤ 5",
        met: p99 <= 5 && unfinished === 0,
        note: inTime,
      },
      changes_not_ready_after_120s: { value: unfinished, unit: "changes" },
      changes_failed_to_send: { value: failed, unit: "changes" },
    },
    notes: [
      "One run (filling the cache is the expensive part). A change sets spec.env, which changes the Pod template: the Pod is replaced.",
    ],
  };
}
