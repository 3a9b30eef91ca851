// Benchmark 5: fleets. Placement decisions per second of the pure placeAll; workspaces
// created at a steady rate (AGENTRY_BENCH_PLACE_RATE, default 20/s) on a warm fleet whose
// sandboxes have free slots: create-to-Placed p50/p99, run after run; the time from a burst
// of Workspaces (4 owners + ownerless) to all placed on a real fleet (real sandbox runtime
// processes behind kwok's pods); and how fast the fleet asks for another sandbox after a
// sandbox's load crosses the pressure threshold, the scale-up window excluded.
import type { KubeObject } from "../lib/kube/client.ts";
import {
  placeAll,
  type PlacementPolicy,
  type SandboxView,
} from "../operator/controllers/sandboxfleet/placement.ts";
import { windowMs } from "../operator/controllers/sandboxfleet/scaling.ts";
import { PodBackends } from "../test/harness/pods.ts";
import { waitFor } from "../test/harness/process.ts";
import { paced } from "./paced.ts";
import {
  benchNamespace,
  benchOperator,
  busiest,
  CpuMeter,
  envNumber,
  fig,
  median,
  percentile,
  pool,
  ReadyWatcher,
  round,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

const OWNERS = ["o1", "o2", "o3", "o4"];
const SAMPLE_MS = 200;
const SCALE_UP_WINDOW = 2;

/** Workspace i of a burst: four owners and the ownerless in turn. */
const ownerOf = (i: number): string | undefined => OWNERS[i % (OWNERS.length + 1)];

/** Decisions per second of placeAll over `pending` workspaces and a fleet of `sandboxes`. */
function placementRate(pending: number, sandboxes: number, minMs: number): number {
  const policy: PlacementPolicy = { maxPerSandbox: 32, cpu: 0.8, memory: 0.8, ownerlessPool: "shared" };
  const views: SandboxView[] = Array.from({ length: sandboxes }, (_, i) => ({
    name: `sb-${String(i).padStart(4, "0")}`,
    ready: true,
    draining: false,
    load: { cpu: (i % 10) / 10, memory: 0.3 },
    // Some sandboxes already serve an owner or the shared pool; the rest are empty.
    workspaces:
      i < OWNERS.length
        ? [{ key: `old/${i}`, ownerId: OWNERS[i]! }]
        : i < sandboxes / 2
          ? Array.from({ length: i % 16 }, (_, j) => ({ key: `old/${i}-${j}` }))
          : [],
  }));
  const ws = Array.from({ length: pending }, (_, i) => {
    const owner = ownerOf(i);
    return { key: `ns/w-${i}`, ...(owner ? { ownerId: owner } : {}) };
  });
  let decisions = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    placeAll(ws, views, policy);
    decisions += ws.length;
  }
  return decisions / ((performance.now() - t0) / 1000);
}

const fleetObject = (namespace: string, maxPerSandbox: number, minReplicas = 1): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "SandboxFleet",
  metadata: { name: "fleet", namespace },
  spec: {
    template: { image: "registry.example/sandbox:1" },
    minReplicas,
    maxReplicas: 20,
    warmEmpty: 1,
    maxWorkspacesPerSandbox: maxPerSandbox,
    samplingInterval: `${SAMPLE_MS}ms`,
    cooldown: "0s",
    scaleUpWindow: SCALE_UP_WINDOW,
    scaleDownWindow: 2,
    idleTTL: "1s",
  },
});

type FleetStatus = { status?: { desiredReplicas?: number; readyReplicas?: number } };

const placed = (o: KubeObject): boolean => {
  const st = o["status"] as { phase?: string; sandboxPod?: string } | undefined;
  return !!st?.sandboxPod && (st.phase === "Placed" || st.phase === "Ready");
};

/**
 * Workspaces created at `rate` per second on a warm fleet (every sandbox ready, free slots
 * for all of them): create-to-Placed latencies of each run, in seconds.
 */
async function pacedPlacement(
  ctx: BenchContext,
  runs: number,
  perRun: number,
  rate: number,
  timeoutMs: number,
): Promise<{ p50S: number[]; p99S: number[]; notes: string[] }> {
  const perSandbox = 100;
  const sandboxesWanted = Math.ceil((runs * perRun) / perSandbox) + 1;
  const namespace = await benchNamespace(ctx, "warm");
  const sandboxes = await PodBackends.start({ namespaces: [namespace], kinds: ["sandbox"] });
  ctx.cleanups.push(() => sandboxes.stop());
  const operator = await benchOperator(ctx, [namespace], [], sandboxes.mapFile);
  await ctx.admin.create(fleetObject(namespace, perSandbox, sandboxesWanted));
  await waitFor(
    "the warm fleet's sandboxes ready",
    async () =>
      ((
        await ctx.admin.get<KubeObject & FleetStatus>(
          "agentry.dev/v1alpha1",
          "SandboxFleet",
          namespace,
          "fleet",
        )
      ).status?.readyReplicas ?? 0) >= sandboxesWanted,
    { timeoutMs: 180_000 },
  );
  const p50S: number[] = [];
  const p99S: number[] = [];
  const notes: string[] = [];
  for (let r = 0; r < runs; r++) {
    const watcher = new ReadyWatcher(ctx, "agentry.dev/v1alpha1", "Workspace", [namespace], placed);
    await watcher.start();
    const meter = new CpuMeter(ctx, { operator: operator.child.pid });
    const created = new Map<string, number>();
    const behind = await paced(perRun, rate, async (i) => {
      const name = `p${r}-${i}`;
      const at = performance.now();
      await ctx.admin.create({
        apiVersion: "agentry.dev/v1alpha1",
        kind: "Workspace",
        metadata: { name, namespace },
        spec: { fleetRef: { name: "fleet" } },
      });
      created.set(`${namespace}/${name}`, at);
    });
    // The namespace holds the earlier runs' Workspaces, Placed already: wait for this run's.
    const lat = await watcher.latenciesS(created, timeoutMs);
    await watcher.stop();
    p50S.push(percentile(lat, 50));
    p99S.push(percentile(lat, 99));
    notes.push(
      `paced placement run ${r + 1}: busiest ${busiest(meter.cores())}; sender behind by ≤ ${behind.toFixed(2)}s`,
    );
    say(`paced placement run ${r + 1}: p50 ${p50S.at(-1)!.toFixed(3)}s p99 ${p99S.at(-1)!.toFixed(3)}s`);
  }
  await operator.kill("SIGKILL");
  return { p50S, p99S, notes };
}

export async function fleetBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const pendingN = envNumber("PLACE_N", 1000);
  const sandboxN = envNumber("PLACE_SANDBOXES", 200);
  const rates: number[] = [];
  placementRate(pendingN, sandboxN, 300); // JIT warm-up, not counted
  for (let r = 0; r < runs; r++) rates.push(placementRate(pendingN, sandboxN, 1000));
  say(`placeAll: ${rates.map((x) => round(x, 0)).join(", ")} decisions/s`);

  const placeRate = envNumber("PLACE_RATE", 20);
  const placePerRun = envNumber("PLACE_PACED_N", 100);
  const warm = await pacedPlacement(
    ctx,
    runs,
    placePerRun,
    placeRate,
    envNumber("RUN_TIMEOUT_S", 300) * 1000,
  );

  const m = envNumber("WORKSPACES", 200);
  const perSandbox = Math.min(1000, Math.max(32, Math.ceil(m / (OWNERS.length + 1))));
  const namespace = await benchNamespace(ctx, "fleet");
  const sandboxes = await PodBackends.start({ namespaces: [namespace], kinds: ["sandbox"] });
  ctx.cleanups.push(() => sandboxes.stop());
  const operator = await benchOperator(ctx, [namespace], [], sandboxes.mapFile);
  await ctx.admin.create(fleetObject(namespace, perSandbox));
  const fleet = () =>
    ctx.admin.get<KubeObject & FleetStatus>("agentry.dev/v1alpha1", "SandboxFleet", namespace, "fleet");
  await waitFor(
    "fleet's first sandbox ready",
    async () => ((await fleet()).status?.readyReplicas ?? 0) >= 1,
    {
      timeoutMs: 120_000,
    },
  );

  const watcher = new ReadyWatcher(ctx, "agentry.dev/v1alpha1", "Workspace", [namespace], placed);
  await watcher.start();
  const meter = new CpuMeter(ctx, { operator: operator.child.pid });
  const t0 = performance.now();
  await pool(
    Array.from({ length: m }, (_, i) => i),
    32,
    async (i) => {
      const owner = ownerOf(i);
      await ctx.admin.create({
        apiVersion: "agentry.dev/v1alpha1",
        kind: "Workspace",
        metadata: { name: `w-${i}`, namespace },
        spec: { fleetRef: { name: "fleet" }, ...(owner ? { ownerId: owner } : {}) },
      });
    },
  );
  await watcher.waitAll(m, envNumber("RUN_TIMEOUT_S", 300) * 1000);
  const burstS = (Math.max(...watcher.readyAt.values()) - t0) / 1000;
  const burstBusiest = busiest(meter.cores());
  say(`fleet burst: ${m} workspaces placed in ${burstS.toFixed(2)}s (${burstBusiest})`);

  // Scale reaction: pin one sandbox's load above the threshold; time until desiredReplicas
  // grows, minus the scale-up window; clear and let it shrink. The window is time, as
  // planScale measures it (scaling.ts): SCALE_UP_WINDOW agreeing samples span
  // (SCALE_UP_WINDOW - 1) sampling intervals. What remains is the wait for the first sample
  // that sees the load (up to one interval) and the operator's own work.
  await waitFor(
    "fleet to settle after the burst",
    async () => {
      const st = (await fleet()).status;
      return st?.desiredReplicas !== undefined && st.desiredReplicas === st.readyReplicas;
    },
    { timeoutMs: 120_000 },
  );
  // A sandbox that holds workspaces (only those count as under pressure).
  const w0 = await ctx.admin.get<KubeObject>("agentry.dev/v1alpha1", "Workspace", namespace, "w-0");
  const target = (w0["status"] as { sandboxPod: string }).sandboxPod;
  const windowS = windowMs(SCALE_UP_WINDOW, SAMPLE_MS) / 1000;
  const reactions: number[] = [];
  const notes: string[] = [];
  for (let r = 0; r < runs; r++) {
    const before = (await fleet()).status?.desiredReplicas ?? 0;
    await sandboxes.setLoad(namespace, target, { cpu: 0.95 });
    const t = performance.now();
    await waitFor(
      "fleet to scale up under pressure",
      async () => ((await fleet()).status?.desiredReplicas ?? 0) > before,
      {
        timeoutMs: 60_000,
        intervalMs: 20,
      },
    );
    reactions.push((performance.now() - t) / 1000 - windowS);
    await sandboxes.setLoad(namespace, target, { cpu: null });
    const settled = await waitFor(
      "fleet to settle",
      async () => ((await fleet()).status?.desiredReplicas ?? 0) <= before,
      { timeoutMs: 30_000 },
    ).catch(() => false);
    if (!settled) {
      notes.push(
        `scale reaction: the fleet did not shrink back within 30s after run ${r + 1}; stopped repeating`,
      );
      break;
    }
  }
  say(`scale reaction (window excluded): ${reactions.map((x) => round(x)).join(", ")}s`);
  const rate = fig(rates, "decisions/s", { goal: "≥ 100000" });
  rate.value = round(rate.value, 0);
  rate.met = rate.value >= 100_000;
  return {
    name: "fleet",
    title: "Fleet: placement throughput, workspace burst, scale reaction",
    date: new Date().toISOString(),
    sizes: {
      placeAllPending: pendingN,
      placeAllSandboxes: sandboxN,
      pacedPlacement: `${placePerRun} ownerless workspaces per run at ${placeRate}/s on a warm fleet (100 slots per sandbox)`,
      burstWorkspaces: m,
      owners: OWNERS.length,
      ownerlessShare: `1/${OWNERS.length + 1}`,
      maxWorkspacesPerSandbox: perSandbox,
      samplingInterval: `${SAMPLE_MS}ms`,
      scaleUpWindow: SCALE_UP_WINDOW,
      runs,
    },
    figures: {
      placement_decisions_per_s: rate,
      paced_create_to_placed_p50_ms: fig(
        warm.p50S.map((x) => x * 1000),
        "ms",
        placeRate === 20 ? { goal: "≤ 50", met: median(warm.p50S) * 1000 <= 50 } : {},
      ),
      paced_create_to_placed_p99_ms: fig(
        warm.p99S.map((x) => x * 1000),
        "ms",
        placeRate === 20 ? { goal: "≤ 250", met: median(warm.p99S) * 1000 <= 250 } : {},
      ),
      burst_to_all_placed_s: { value: round(burstS, 3), unit: "s", note: "one run" },
      scale_reaction_s: fig(reactions, "s", {
        note: `after the ${windowS}s scale-up window (${SCALE_UP_WINDOW} samples ${SAMPLE_MS}ms apart); includes up to ${SAMPLE_MS}ms to the first sample`,
      }),
    },
    notes: [...warm.notes, `burst: busiest ${burstBusiest}`, ...notes],
  };
}
