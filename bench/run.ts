// `make bench`: starts one dedicated local control plane (lifted limits, 10 kwok nodes),
// installs the CRDs, runs each benchmark under a hard time cap, writes
// bench/results/<name>.json and regenerates bench/RESULTS.md. Loopback only.
//
//   npm run bench                 every benchmark, quick sizes
//   npm run bench -- create fleet only these
//   AGENTRY_BENCH_N=1000 ...      the issue's sizes (see bench/README section in RESULTS.md)
import { execFileSync } from "node:child_process";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "../lib/kube/kubeconfig.ts";
import { KubeClient } from "../lib/kube/client.ts";
import { controlPlaneBinDir } from "../test/harness/binaries.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { installCrds } from "../test/harness/install.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { enterLoopbackNetns } from "../test/harness/netns.ts";
import { createBench } from "./create.ts";
import { fleetBench } from "./fleet.ts";
import { gatewayBench } from "./gateway.ts";
import { pipelinesBench } from "./pipelines.ts";
import { idleBench } from "./idle.ts";
import { pacedBench } from "./paced.ts";
import { steadyBench } from "./steady.ts";
import { capped, envNumber, say, type BenchContext, type BenchResult } from "./lib.ts";
import { writeResults, type Machine, type Provenance } from "./report.ts";

type Bench = { run: (ctx: BenchContext) => Promise<BenchResult>; capS: number };
const benches: Record<string, Bench> = {
  idle: { run: idleBench, capS: 300 },
  create: { run: createBench, capS: 900 },
  paced: { run: pacedBench, capS: 3600 },
  pipelines: { run: pipelinesBench, capS: 900 },
  steady: { run: steadyBench, capS: 900 },
  fleet: { run: fleetBench, capS: 600 },
  gateway: { run: gatewayBench, capS: 1200 },
};

// Everything below runs in a network namespace with only loopback (where root allows it).
await enterLoopbackNetns("make bench");

const benchDir = join(repoRoot, "bench");
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
for (const w of wanted)
  if (!benches[w]) throw new Error(`unknown benchmark ${w}; known: ${Object.keys(benches).join(", ")}`);
const selected = wanted.length ? wanted : Object.keys(benches);

function machine(): Machine {
  const versions = Object.fromEntries(
    readFileSync(join(repoRoot, "hack", "controlplane", "versions.env"), "utf8")
      .split("\n")
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => l.split("=") as [string, string]),
  );
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    kubernetes: versions["KUBERNETES_VERSION"] ?? "?",
    etcd: versions["ETCD_VERSION"] ?? "?",
    kwok: versions["KWOK_VERSION"] ?? "?",
    os: `${type()} ${release()}`,
    agentry: REVISION,
  };
}

/** The commit benchmarked, marked when the worktree had changes: read when the run starts (a
 * commit made while a long benchmark runs is not what it measured). */
function gitRevision(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
    return `${git("rev-parse", "--short=12", "HEAD")}${git("status", "--porcelain", "--untracked-files=no") ? "+changes" : ""}`;
  } catch {
    return "unknown";
  }
}

const REVISION = gitRevision();

/** How this run was started: the command line, and every setting read from the environment. */
function provenance(): Omit<Provenance, "loadAverage"> {
  const args = process.argv.slice(2);
  const viaNpm = process.env.npm_lifecycle_event === "bench";
  const overrides = Object.fromEntries(
    Object.entries(process.env)
      .filter(([k]) => k.startsWith("AGENTRY_BENCH_") || k === "NODE_OPTIONS")
      .sort(([a], [b]) => a.localeCompare(b)),
  ) as Record<string, string>;
  const env = Object.entries(overrides).map(([k, v]) => `${k}=${v}`);
  const cmd = viaNpm
    ? `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`
    : `node --import tsx bench/run.ts ${args.join(" ")}`.trim();
  return { command: [...env, cmd].join(" "), environment: overrides };
}

let cp: ControlPlane | undefined;
let stopping: Promise<void> | undefined;
const stop = () => (stopping ??= cp?.stop() ?? Promise.resolve());
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => void stop().then(() => process.exit(130)));

// AGENTRY_BENCH_TAG=<tag>: write <name>-<tag>.json beside the main results (e.g. an experiment).
const tag = process.env.AGENTRY_BENCH_TAG?.replace(/[^a-z0-9-]/gi, "");
// AGENTRY_BENCH_OUT=<dir>: write the results there and leave bench/results and RESULTS.md alone
// (a smoke run with small sizes, to see that a benchmark works: not evidence).
const out = process.env.AGENTRY_BENCH_OUT || join(benchDir, "results");
let failed = 0;
try {
  say("starting the local control plane (unthrottled, 10 kwok nodes)");
  cp = await ControlPlane.start({ unthrottled: true, nodes: 10, verbose: true });
  installCrds(cp.kubeconfig);
  const bin = controlPlaneBinDir();
  Object.assign(process.env, {
    KUBECONFIG: cp.kubeconfig,
    AGENTRY_CONTROLPLANE_DIR: cp.dir,
    AGENTRY_CONTROLPLANE_BIN: bin,
    PATH: `${bin}:${process.env.PATH ?? ""}`,
  });
  const kc = KubeConfig.fromFiles([cp.kubeconfig]);
  const admin = new KubeClient(kc, { qps: 1e6, burst: 1e6, userAgent: "bench-admin" });
  mkdirSync(out, { recursive: true });
  for (const name of selected) {
    const bench = benches[name]!;
    const ctx: BenchContext = {
      cp,
      kc,
      admin,
      qps: envNumber("QPS", 400),
      burst: envNumber("BURST", 800),
      cleanups: [],
    };
    const t0 = Date.now();
    const loadBefore = loadavg();
    const capS = envNumber(`CAP_S`, bench.capS);
    say(`${name}: starting (cap ${capS}s)`);
    try {
      const result = await capped(name, capS * 1000, () => bench.run(ctx));
      // The machine may be shared: its load average says how much else was running.
      const run: Provenance = { ...provenance(), loadAverage: { start: loadBefore, end: loadavg() } };
      writeFileSync(
        join(out, `${name}${tag ? `-${tag}` : ""}.json`),
        `${JSON.stringify({ ...result, ...(tag ? { title: `${result.title} [${tag}]` } : {}), run, machine: machine() }, null, 2)}\n`,
      );
      say(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    } catch (err) {
      failed++;
      say(`${name}: FAILED: ${err instanceof Error ? err.stack : String(err)}`);
    } finally {
      for (const fn of ctx.cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
    }
  }
} finally {
  await stop();
}
if (process.env.AGENTRY_BENCH_OUT) say(`results in ${out}; bench/RESULTS.md left as it was`);
else {
  await writeResults(benchDir);
  say(`wrote bench/RESULTS.md${failed ? `; ${failed} benchmark(s) failed` : ""}`);
}
process.exit(failed ? 1 : 0);
