// Benchmark 6: the gateway (gateway/main.ts as a child process: static bearer token, audit
// records in PostgreSQL, every call impersonating the caller) against the apiserver called
// directly (the kubeconfig's bearer token): GET list and POST create of AgentRuntimes at 50
// and 200 concurrent clients, with autocannon. Same objects, same concurrency, same client,
// run after run side by side. Loopback only; every load run lasts a fixed few seconds.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { hashToken } from "../gateway/auth/tokens.ts";
import { migrate } from "../gateway/store/migrations.ts";
import { createPool } from "../gateway/store/store.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { waitFor } from "../test/harness/process.ts";
import { startPostgres } from "../test/harness/services.ts";
import { agentRuntime } from "./create.ts";
import {
  benchNamespace,
  busiest,
  CpuMeter,
  envNumber,
  fig,
  round,
  say,
  type BenchContext,
  type BenchResult,
  type Figure,
} from "./lib.ts";

const TOKEN = "bench-gateway-token";
const USER = "bench-user";
/** 1: each side's own latency, unloaded; 50 and 200: the concurrencies. */
const CONCURRENCIES = [1, 50, 200] as const;
const OPS = ["list", "create"] as const;
const TARGETS = ["apiserver", "gateway"] as const;
type Op = (typeof OPS)[number];
type Target = (typeof TARGETS)[number];

interface Load {
  p50Ms: number;
  p99Ms: number;
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** CPU milliseconds per request of the apiserver and of the gateway over the run. */
  apiserverCpuMs?: number;
  gatewayCpuMs?: number;
}

interface Endpoint {
  base: string;
  path: (namespace: string) => string;
  headers: Record<string, string>;
  tlsOptions?: { ca: string };
}

/** AGENTRY_BENCH_CPU_PROF=<dir>: the gateway writes a V8 CPU profile there when it stops. */
function profiling(): Record<string, string> {
  const dir = process.env.AGENTRY_BENCH_CPU_PROF;
  return dir
    ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${dir}`.trim() }
    : {};
}

/** gateway/main.ts as a child process; its log goes to a file (not through this process). */
async function startGateway(ctx: BenchContext, env: Record<string, string>, logFile: string) {
  const fd = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "gateway", "main.ts"), "--listen=127.0.0.1:0"],
    { env: { ...process.env, ...env, ...profiling() }, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  const exited = once(child, "exit");
  ctx.cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  });
  const port = await waitFor(
    "gateway to listen",
    async () => {
      const log = await readFile(logFile, "utf8");
      const line = log.split("\n").find((l) => l.includes("gateway listening"));
      if (line) return (JSON.parse(line) as { port: number }).port;
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${log}`);
      return undefined;
    },
    { timeoutMs: 60_000 },
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

/** One autocannon run; creates get a unique name per request. */
async function load(
  ep: Endpoint,
  op: Op,
  namespace: string,
  connections: number,
  seconds: number,
): Promise<Load> {
  let i = 0;
  const prefix = `c${Date.now().toString(36)}`;
  const create: autocannon.Request = {
    method: "POST",
    path: ep.path(namespace),
    headers: { ...ep.headers, "content-type": "application/json" },
    setupRequest: (req) => ({
      ...req,
      body: JSON.stringify(agentRuntime(namespace, `${prefix}-${i++}`)),
    }),
  };
  const result = await autocannon({
    url: ep.base,
    connections,
    duration: seconds,
    timeout: 30,
    headers: ep.headers,
    ...(ep.tlsOptions ? { tlsOptions: ep.tlsOptions } : {}),
    requests: [op === "list" ? { method: "GET", path: ep.path(namespace) } : create],
  });
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    rps: result.requests.total / Math.max(result.duration, 1e-3),
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Deletes the AgentRuntimes a create run made (one collection call), so runs start alike. */
async function deleteAll(ctx: BenchContext, namespace: string): Promise<void> {
  await ctx.admin.request("DELETE", `/apis/agentry.dev/v1alpha1/namespaces/${namespace}/agentruntimes`, {
    body: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background" },
  });
}

export async function gatewayBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const seconds = envNumber("GATEWAY_S", 5);
  const listItems = envNumber("GATEWAY_LIST_ITEMS", 20);
  const dir = await mkdtemp(join(tmpdir(), "agentry-bench-gw-"));
  ctx.cleanups.push(() => rm(dir, { recursive: true, force: true }));

  // The audit database: a private PostgreSQL (as a deployment has), else embedded PGlite.
  const pg = await startPostgres().catch(() => undefined);
  if (pg) ctx.cleanups.push(() => pg.stop(false));
  const env: Record<string, string> = {
    KUBECONFIG: ctx.cp.kubeconfig,
    AGENTRY_TOKENS_FILE: join(dir, "tokens.json"),
    AGENTRY_TOKEN_REVIEW: "false",
    AGENTRY_GATEWAY_METRICS_ADDR: "127.0.0.1:0",
    // One identity sends all the load: lift the per-identity limit and the gateway's own
    // apiserver client limit (default 500 req/s), so both sides are measured unthrottled.
    AGENTRY_RATE_LIMIT: "1000000",
    AGENTRY_RATE_BURST: "1000000",
    AGENTRY_ADDRESS_RATE_LIMIT: "1000000",
    AGENTRY_ADDRESS_RATE_BURST: "1000000",
    AGENTRY_KUBE_QPS: "1000000",
    AGENTRY_KUBE_BURST: "1000000",
  };
  if (pg) {
    const pool = createPool(pg.url, 1);
    await migrate(pool);
    await pool.end();
    env["DATABASE_URL"] = pg.url;
  }
  // The caller is a member of system:masters, as the kubeconfig's admin is: both sides pass
  // the same authorization path (the gateway's calls are impersonated).
  await writeFile(
    env["AGENTRY_TOKENS_FILE"]!,
    JSON.stringify([{ sha256: hashToken(TOKEN), user: USER, groups: ["system:masters"] }]),
  );
  const gw = await startGateway(ctx, env, join(dir, "gateway.log"));
  say(`gateway at ${gw.url} (audit database: ${pg ? "PostgreSQL" : "embedded PGlite"})`);

  const endpoints: Record<Target, Endpoint> = {
    apiserver: {
      base: ctx.cp.server,
      path: (ns) => `/apis/agentry.dev/v1alpha1/namespaces/${ns}/agentruntimes`,
      headers: { authorization: `Bearer ${ctx.cp.token}`, accept: "application/json" },
      tlsOptions: { ca: await readFile(ctx.cp.caFile, "utf8") },
    },
    gateway: {
      base: gw.url,
      path: (ns) => `/v1/namespaces/${ns}/agentruntimes`,
      headers: { authorization: `Bearer ${TOKEN}`, accept: "application/json" },
    },
  };

  // The listed namespace holds `listItems` AgentRuntimes (no operator runs: nothing else changes).
  const listNs = await benchNamespace(ctx, "gwlist");
  for (let i = 0; i < listItems; i++) await ctx.admin.create(agentRuntime(listNs, `l-${i}`));
  const createNs = await benchNamespace(ctx, "gwcreate");

  // Warm-up (connections, JIT, caches): one short run of each kind on each side, not recorded.
  for (const t of TARGETS)
    for (const op of OPS) await load(endpoints[t], op, op === "list" ? listNs : createNs, 50, 1);
  await deleteAll(ctx, createNs);

  const samples: Record<string, Load[]> = {};
  const cores: Record<Target, Record<string, number>[]> = { apiserver: [], gateway: [] };
  const problems: string[] = [];
  for (let r = 0; r < runs; r++) {
    for (const op of OPS)
      for (const c of CONCURRENCIES)
        for (const t of TARGETS) {
          const meter = new CpuMeter(ctx, { gateway: gw.child.pid });
          const t0 = performance.now();
          const l = await load(endpoints[t], op, op === "list" ? listNs : createNs, c, seconds);
          const wallS = (performance.now() - t0) / 1000;
          const used = meter.cores();
          cores[t].push(used);
          if (op === "create") await deleteAll(ctx, createNs);
          if (l.requests > 0) {
            l.apiserverCpuMs = ((used["kube-apiserver"] ?? 0) * wallS * 1000) / l.requests;
            if (t === "gateway") l.gatewayCpuMs = ((used["gateway"] ?? 0) * wallS * 1000) / l.requests;
            (samples[`${t}_${op}_c${c}`] ??= []).push(l);
          } else
            problems.push(`run ${r + 1} ${t} ${op} c=${c}: no request completed in the run; run left out`);
          if (l.non2xx || l.errors)
            problems.push(
              `run ${r + 1} ${t} ${op} c=${c}: ${l.non2xx} non-2xx answers, ${l.errors} errors of ${l.requests}`,
            );
          say(
            `run ${r + 1} ${t} ${op} c=${c}: p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${round(l.rps, 0)} req/s; busiest ${busiest(used)}`,
          );
        }
  }

  const figures: Record<string, Figure> = {};
  const of = (t: Target, op: Op, c: number) => samples[`${t}_${op}_c${c}`] ?? [];
  for (const op of OPS)
    for (const c of CONCURRENCIES)
      for (const t of TARGETS) {
        const s = of(t, op, c);
        figures[`${t}_${op}_c${c}_p50_ms`] = fig(
          s.map((l) => l.p50Ms),
          "ms",
        );
        figures[`${t}_${op}_c${c}_p99_ms`] = fig(
          s.map((l) => l.p99Ms),
          "ms",
        );
        const rps = fig(
          s.map((l) => l.rps),
          "req/s",
        );
        if (t === "gateway" && op === "list" && c > 1) {
          rps.goal = "≥ 5000";
          rps.met = rps.value >= 5000;
          rps.note = "passed through to the apiserver as the caller (no cache in the gateway)";
        }
        figures[`${t}_${op}_c${c}_req_per_s`] = rps;
      }
  // Overhead: the gateway's median minus the apiserver's median, at each concurrency.
  for (const op of OPS)
    for (const c of CONCURRENCIES)
      for (const q of ["p50", "p99"] as const) {
        const key = `${q}Ms` as const;
        const g = fig(
          of("gateway", op, c).map((l) => l[key]),
          "ms",
        ).value;
        const a = fig(
          of("apiserver", op, c).map((l) => l[key]),
          "ms",
        ).value;
        const overhead: Figure = {
          value: round(g - a, 1),
          unit: "ms",
          note: "gateway median − apiserver median",
        };
        if (op === "create" && q === "p99" && c > 1) {
          overhead.goal = "≤ 30";
          overhead.met = overhead.value <= 30;
        }
        figures[`${op}_c${c}_${q}_overhead_ms`] = overhead;
      }
  // CPU per request (less sensitive to the machine's other load than latencies), at c=50.
  for (const op of OPS) {
    figures[`apiserver_cpu_ms_per_${op}_direct`] = fig(
      of("apiserver", op, 50).map((l) => l.apiserverCpuMs ?? NaN),
      "ms",
    );
    figures[`apiserver_cpu_ms_per_${op}_via_gateway`] = fig(
      of("gateway", op, 50).map((l) => l.apiserverCpuMs ?? NaN),
      "ms",
    );
    figures[`gateway_cpu_ms_per_${op}`] = fig(
      of("gateway", op, 50).map((l) => l.gatewayCpuMs ?? NaN),
      "ms",
    );
  }

  const avgCores = (t: Target) => {
    const all = cores[t];
    const keys = Object.keys(all[0] ?? {});
    return Object.fromEntries(
      keys.map((k) => [k, round(all.reduce((s, x) => s + (x[k] ?? 0), 0) / all.length)]),
    );
  };
  return {
    name: "gateway",
    title: "Gateway: list and create through gateway/main.ts vs straight to the apiserver",
    date: new Date().toISOString(),
    sizes: {
      runs,
      secondsPerLoad: seconds,
      listItems,
      concurrency: CONCURRENCIES.join(" and "),
      auditDatabase: pg ? "PostgreSQL (fsync off)" : "embedded PGlite",
      loadTool: "autocannon 9.0.0 (in the bench process)",
    },
    figures,
    notes: [
      "Objects: AgentRuntimes (no operator running). List: GET of a namespace holding " +
        `${listItems} of them, no limit. Create: POST of a new one per request (deleted after each run).`,
      "Gateway: static bearer token of a system:masters member, impersonated on every apiserver call; " +
        "per-identity and per-address rate limits and the gateway's apiserver client limit lifted; request log at info level to a file. " +
        "Apiserver: the kubeconfig's bearer token (system:masters) over TLS.",
      `apiserver runs, average cores: ${JSON.stringify(avgCores("apiserver"))}`,
      `gateway runs, average cores: ${JSON.stringify(avgCores("gateway"))}`,
      ...problems,
    ],
  };
}
