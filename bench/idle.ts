// Benchmark: the idle operator. The compiled operator (as the images run it) watching one
// empty namespace, started `runs` times: its resident set size once its caches are synced
// and it has sat idle for a while (goal: under 60 MiB), and where its heap goes.
import { waitFor } from "../test/harness/process.ts";
import { heapSummary } from "./heap.ts";
import {
  benchNamespace,
  benchOperator,
  envNumber,
  fig,
  rssMiB,
  rssParts,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

export async function idleBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const idleS = envNumber("IDLE_S", 15);
  const rss: number[] = [];
  const peak: number[] = [];
  const notes: string[] = [];
  for (let r = 0; r < runs; r++) {
    const namespace = await benchNamespace(ctx, "idle");
    const operator = await benchOperator(ctx, [namespace], [], undefined, {
      compiled: true,
      heapSnapshots: r === 0,
    });
    await waitFor(
      "operator caches synced",
      async () => (await fetch(`http://127.0.0.1:${operator.port}/readyz`)).ok,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // Idle: sample the RSS (VmRSS, what process.memoryUsage().rss reads) every 250 ms.
    const samples: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < idleS * 1000) {
      samples.push(rssMiB(operator.child.pid));
      await new Promise((r) => setTimeout(r, 250));
    }
    rss.push(samples.at(-1)!);
    const parts = rssParts(operator.child.pid);
    notes.push(
      `run ${r + 1}: RSS ${samples.at(-1)!.toFixed(1)} MiB = ${parts.anon.toFixed(1)} MiB anonymous (V8 heap, buffers) + ${parts.file.toFixed(1)} MiB file-backed (node's binary and code pages)`,
    );
    peak.push(Math.max(...samples));
    say(
      `idle run ${r + 1}: RSS ${samples.at(-1)!.toFixed(1)} MiB after ${idleS}s (peak ${Math.max(...samples).toFixed(1)})`,
    );
    if (r === 0) notes.push(...(await heapSummary(operator, "idle operator")));
    await operator.kill("SIGKILL");
  }
  const idle = fig(rss, "MiB", { goal: "< 60" });
  idle.met = idle.value < 60;
  return {
    name: "idle",
    title: "Idle operator: resident memory on an empty namespace (compiled)",
    date: new Date().toISOString(),
    sizes: { runs, idleSeconds: idleS, namespaces: 1, objects: 0 },
    figures: {
      operator_idle_rss_mib: { ...idle, note: `RSS after ${idleS}s idle with synced caches` },
      operator_idle_peak_rss_mib: fig(peak, "MiB", { note: "largest RSS sample while idle" }),
    },
    notes,
  };
}
