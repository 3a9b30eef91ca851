// Benchmark 6 (issue 22): the gateway, compiled as the image runs it (dist/gateway/main.js:
// static bearer token, audit records in a private PostgreSQL, reads from its cache, writes
// impersonating the caller), measured in one run against a bare Express 5 "hello" server and
// the apiserver called directly (the kubeconfig's bearer token), with autocannon in this
// process, on loopback:
//   1. GET of a list of 20 AgentRuntimes and GET of one, at 50 clients: the gateway's
//      requests/s against the hello server's, measured right before each (goal ≥ 70 %), the apiserver's beside them;
//   2. POST create at 1 and 50 clients: the gateway's p99 over the apiserver's (goal ≤ 30 ms
//      at 1 client, ≤ 1.5× the apiserver's p99 at 50);
//   3. memory: the gateway's RSS with GATEWAY_CACHED (10,000) AgentRuntimes in its cache
//      (goal ≤ 250 MiB) and what each cached object costs (RSS, heap and serialised JSON).
// Every load runs a fixed few seconds; the loads of a run go one after another, side by side.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { hashToken } from "../gateway/auth/tokens.ts";
import { migrate } from "../gateway/store/migrations.ts";
import { createPool } from "../gateway/store/store.ts";
import { metricSum } from "../test/harness/metrics.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { waitFor } from "../test/harness/process.ts";
import { startPostgres } from "../test/harness/services.ts";
import { agentRuntime, createAll } from "./create.ts";
import {
  benchNamespace,
  busiest,
  CpuMeter,
  envNumber,
  fig,
  median,
  round,
  rssMiB,
  say,
  withGoal,
  type BenchContext,
  type BenchResult,
  type Figure,
} from "./lib.ts";

const TOKEN = "bench-gateway-token";
const USER = "bench-user";
const API = "/apis/agentry.dev/v1alpha1";

/** The bare Express 5 hello-world the issue compares with (Express's own example). */
const HELLO = `
import express from "express";
const app = express();
app.get("/", (_req, res) => { res.send("Hello World!"); });
const server = app.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
`;

type Target = "hello" | "apiserver" | "gateway";
type Op = "hello" | "list" | "get" | "create";

/** What one run measures: operation, target, concurrency. */
const LOADS: [Op, Target, number][] = [
  ["hello", "hello", 50],
  ["list", "apiserver", 50],
  ["list", "gateway", 50],
  ["get", "apiserver", 50],
  ["get", "gateway", 50],
  ["list", "apiserver", 1],
  ["list", "gateway", 1],
  ["create", "apiserver", 1],
  ["create", "gateway", 1],
  ["create", "apiserver", 50],
  ["create", "gateway", 50],
];

interface Load {
  p50Ms: number;
  p99Ms: number;
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** CPU milliseconds per request of the apiserver and of the gateway over the load. */
  apiserverCpuMs?: number;
  gatewayCpuMs?: number;
  /** For a gateway read at 50 clients: hello's req/s measured right before it (hello swings from minute to minute). */
  helloRps?: number;
}

interface Endpoint {
  base: string;
  headers: Record<string, string>;
  tlsOptions?: { ca: string };
  path: (op: Op, namespace: string) => string;
}

/** AGENTRY_BENCH_CPU_PROF=<dir>: the gateway writes a V8 CPU profile there when it stops. */
function profiling(): Record<string, string> {
  const dir = process.env.AGENTRY_BENCH_CPU_PROF;
  return dir
    ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${dir}`.trim() }
    : {};
}

/** Stops a child process now (SIGTERM) and waits for it. */
async function stopNow(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

/** Stops a child process at the end of the benchmark (SIGTERM, so a profile gets written). */
function stopAtEnd(ctx: BenchContext, child: ReturnType<typeof spawn>): void {
  const exited = once(child, "exit");
  ctx.cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  });
}

/** dist/gateway/main.js as a child process; its log goes to a file (not through this process). */
async function startGateway(ctx: BenchContext, env: Record<string, string>, logFile: string) {
  const fd = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [join(repoRoot, "dist", "gateway", "main.js"), "--listen=127.0.0.1:0"],
    { env: { ...process.env, ...env, ...profiling() }, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  stopAtEnd(ctx, child);
  const ports = await waitFor(
    "gateway to listen",
    async () => {
      const log = await readFile(logFile, "utf8");
      const line = log.split("\n").find((l) => l.includes("gateway listening"));
      if (line) return JSON.parse(line) as { port: number; metricsPort: number };
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${log}`);
      return undefined;
    },
    { timeoutMs: 60_000 },
  );
  return {
    child,
    url: `http://127.0.0.1:${ports.port}`,
    metrics: `http://127.0.0.1:${ports.metricsPort}/metrics`,
  };
}

/** The hello server as a child process of the same Node, run from the repository. */
async function startHello(ctx: BenchContext) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", HELLO], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  stopAtEnd(ctx, child);
  const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
  return { child, url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}` };
}

/** One autocannon run; creates get a unique name per request. */
async function load(ep: Endpoint, op: Op, namespace: string, connections: number, seconds: number) {
  let i = 0;
  const prefix = `c${Date.now().toString(36)}`;
  const request: autocannon.Request =
    op === "create"
      ? {
          method: "POST",
          path: ep.path(op, namespace),
          headers: { ...ep.headers, "content-type": "application/json" },
          setupRequest: (req) => ({
            ...req,
            body: JSON.stringify(agentRuntime(namespace, `${prefix}-${i++}`)),
          }),
        }
      : { method: "GET", path: ep.path(op, namespace) };
  const result = await autocannon({
    url: ep.base,
    connections,
    duration: seconds,
    timeout: 30,
    headers: ep.headers,
    ...(ep.tlsOptions ? { tlsOptions: ep.tlsOptions } : {}),
    requests: [request],
  });
  return {
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    rps: result.requests.total / Math.max(result.duration, 1e-3),
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  } satisfies Load;
}

/**
 * Deletes a namespace's AgentRuntimes (collection calls) until none is left: creates still in
 * flight when a load ends may land after the first call.
 */
async function deleteAll(ctx: BenchContext, namespace: string): Promise<void> {
  const path = `${API}/namespaces/${namespace}/agentruntimes`;
  await waitFor(
    `AgentRuntimes of ${namespace} deleted`,
    async () => {
      await ctx.admin.request("DELETE", path, {
        body: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background" },
      });
      const left = await ctx.admin.request<{ items: unknown[] }>("GET", path, { query: { limit: 1 } });
      return left.items.length === 0;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
}

export async function gatewayBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const seconds = envNumber("GATEWAY_S", 5);
  const listItems = envNumber("GATEWAY_LIST_ITEMS", 20);
  const cachedN = envNumber("GATEWAY_CACHED", 10_000);
  const dir = await mkdtemp(join(tmpdir(), "agentry-bench-gw-"));
  ctx.cleanups.push(() => rm(dir, { recursive: true, force: true }));

  say("building the programs (npm run build:programs): the gateway runs compiled, as in its image");
  execFileSync("npm", ["run", "--silent", "build:programs"], { cwd: repoRoot, stdio: "inherit" });

  // The audit database: a private PostgreSQL, as a deployment has.
  const pg = await startPostgres();
  if (!pg)
    throw new Error(
      "the gateway benchmark needs the PostgreSQL server binaries (see test/harness/services.ts)",
    );
  ctx.cleanups.push(() => pg.stop(false));
  const pool = createPool(pg.url, 1);
  await migrate(pool);
  await pool.end();
  const env: Record<string, string> = {
    KUBECONFIG: ctx.cp.kubeconfig,
    DATABASE_URL: pg.url,
    AGENTRY_TOKENS_FILE: join(dir, "tokens.json"),
    AGENTRY_TOKEN_REVIEW: "false",
    AGENTRY_GATEWAY_METRICS_ADDR: "127.0.0.1:0",
    AGENTRY_CONSOLE_DIR: "",
    AGENTRY_SHUTDOWN_DELAY: "0s",
    // One identity sends all the load: lift the per-identity limit and the gateway's own
    // apiserver client limit (default 500 req/s), so both sides are measured unthrottled.
    AGENTRY_RATE_LIMIT: "1000000",
    AGENTRY_RATE_BURST: "1000000",
    AGENTRY_ADDRESS_RATE_LIMIT: "1000000",
    AGENTRY_ADDRESS_RATE_BURST: "1000000",
    AGENTRY_KUBE_QPS: "1000000",
    AGENTRY_KUBE_BURST: "1000000",
  };
  // The caller is a member of system:masters, as the kubeconfig's admin is: both sides pass
  // the same authorization (the gateway's writes are impersonated, its reads reviewed).
  await writeFile(
    env["AGENTRY_TOKENS_FILE"]!,
    JSON.stringify([{ sha256: hashToken(TOKEN), user: USER, groups: ["system:masters"] }]),
  );

  // The listed namespace holds `listItems` AgentRuntimes (no operator runs: nothing else changes).
  const listNs = await benchNamespace(ctx, "gwlist");
  for (let i = 0; i < listItems; i++) await ctx.admin.create(agentRuntime(listNs, `l-${i}`));
  const createNs = await benchNamespace(ctx, "gwcreate");

  const gw = await startGateway(ctx, env, join(dir, "gateway.log"));
  const hello = await startHello(ctx);
  const fromCache = () => metricSum(gw.metrics, "agentry_gateway_reads_total", { source: "cache" });
  await waitFor("the gateway's cache to answer", async () => {
    const before = await fromCache();
    await fetch(`${gw.url}/v1/namespaces/${listNs}/agentruntimes`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return (await fromCache()) > before;
  });
  say(`gateway at ${gw.url} (compiled, PostgreSQL audit), hello at ${hello.url}`);

  const ca = await readFile(ctx.cp.caFile, "utf8");
  const endpoints: Record<Target, Endpoint> = {
    hello: { base: hello.url, headers: {}, path: () => "/" },
    apiserver: {
      base: ctx.cp.server,
      headers: { authorization: `Bearer ${ctx.cp.token}`, accept: "application/json" },
      tlsOptions: { ca },
      path: (op, ns) => `${API}/namespaces/${ns}/agentruntimes${op === "get" ? "/l-0" : ""}`,
    },
    gateway: {
      base: gw.url,
      headers: { authorization: `Bearer ${TOKEN}`, accept: "application/json" },
      path: (op, ns) => `/v1/namespaces/${ns}/agentruntimes${op === "get" ? "/l-0" : ""}`,
    },
  };
  const nsOf = (op: Op) => (op === "create" ? createNs : listNs);

  // Warm-up (connections, JIT, caches): one short run of each load, not recorded.
  for (const [op, target] of LOADS) await load(endpoints[target], op, nsOf(op), 50, 1);
  await deleteAll(ctx, createNs);

  const samples: Record<string, Load[]> = {};
  const problems: string[] = [];
  const cacheShare: number[] = [];
  for (let r = 0; r < runs; r++)
    for (const [op, target, c] of LOADS) {
      // Each cached read at 50 clients has its own hello load right before it, so the ratio
      // compares the two servers under the same conditions of the machine.
      const helloBefore =
        target === "gateway" && (op === "list" || op === "get") && c === 50
          ? (await load(endpoints.hello, "hello", "", 50, seconds)).rps
          : undefined;
      const meter = new CpuMeter(ctx, { gateway: gw.child.pid, hello: hello.child.pid });
      const cachedBefore = target === "gateway" && op !== "create" ? await fromCache() : 0;
      const t0 = performance.now();
      const l: Load = await load(endpoints[target], op, nsOf(op), c, seconds);
      const wallS = (performance.now() - t0) / 1000;
      const used = meter.cores();
      if (op === "create") await deleteAll(ctx, createNs);
      if (target === "gateway" && op !== "create" && l.requests > 0)
        cacheShare.push(((await fromCache()) - cachedBefore) / l.requests);
      if (helloBefore !== undefined) l.helloRps = helloBefore;
      if (l.requests > 0) {
        l.apiserverCpuMs = ((used["kube-apiserver"] ?? 0) * wallS * 1000) / l.requests;
        if (target === "gateway") l.gatewayCpuMs = ((used["gateway"] ?? 0) * wallS * 1000) / l.requests;
        (samples[`${target}_${op}_c${c}`] ??= []).push(l);
      } else problems.push(`run ${r + 1} ${target} ${op} c=${c}: no request completed; left out`);
      if (l.non2xx || l.errors)
        problems.push(
          `run ${r + 1} ${target} ${op} c=${c}: ${l.non2xx} non-2xx answers, ${l.errors} errors of ${l.requests}`,
        );
      say(
        `run ${r + 1} ${target} ${op} c=${c}: p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${round(l.rps, 0)} req/s; busiest ${busiest(used)}`,
      );
    }

  const figures: Record<string, Figure> = {};
  const of = (t: Target, op: Op, c: number) => samples[`${t}_${op}_c${c}`] ?? [];
  for (const [op, target, c] of LOADS) {
    const s = of(target, op, c);
    const key = `${target}_${op === "hello" ? "" : `${op}_`}c${c}`;
    figures[`${key}_req_per_s`] = fig(
      s.map((l) => l.rps),
      "req/s",
    );
    figures[`${key}_p50_ms`] = fig(
      s.map((l) => l.p50Ms),
      "ms",
    );
    figures[`${key}_p99_ms`] = fig(
      s.map((l) => l.p99Ms),
      "ms",
    );
  }

  // Goal 1: reads from the cache at 50 clients against the hello server measured right before each.
  for (const op of ["list", "get"] as const) {
    const ratios = of("gateway", op, 50).map((l) => l.rps / (l.helloRps ?? NaN));
    figures[`hello_before_${op}_c50_req_per_s`] = fig(
      of("gateway", op, 50).map((l) => l.helloRps ?? NaN),
      "req/s",
      { note: `hello's load right before each gateway ${op} load` },
    );
    figures[`gateway_${op}_c50_vs_hello`] = withGoal(
      fig(ratios, "× hello", {
        note: `gateway ${op === "list" ? `GET of a list of ${listItems}` : "GET of one object"} req/s ÷ bare Express hello req/s measured right before it`,
      }),
      "≥ 0.7",
      (v) => v >= 0.7,
    );
  }
  figures["gateway_reads_from_cache_share"] = fig(cacheShare, "of reads", {
    note: "reads the gateway answered from its cache ÷ reads it answered (agentry_gateway_reads_total)",
  });

  // Goal 2: create overhead over the direct call.
  const p99 = (t: Target, c: number) => median(of(t, "create", c).map((l) => l.p99Ms));
  figures["create_c1_p99_overhead_ms"] = withGoal(
    {
      value: round(p99("gateway", 1) - p99("apiserver", 1), 1),
      unit: "ms",
      note: "gateway median p99 − apiserver median p99",
    },
    "≤ 30",
    (v) => v <= 30,
  );
  figures["create_c50_p99_vs_apiserver"] = withGoal(
    {
      value: round(p99("gateway", 50) / p99("apiserver", 50), 2),
      unit: "×",
      note: "gateway median p99 ÷ apiserver median p99",
    },
    "≤ 1.5",
    (v) => v <= 1.5,
  );

  // CPU per request at 50 clients (less sensitive to the machine's other load than latencies).
  for (const op of ["list", "get", "create"] as const) {
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

  // Goal 3: memory with `cachedN` AgentRuntimes in the gateway's cache, measured on gateways
  // started fresh (the load gateway's heap has grown under load; its RSS is reported too).
  figures["gateway_rss_after_loads_mib"] = {
    value: round(rssMiB(gw.child.pid), 1),
    unit: "MiB",
    note: "the gateway that served the loads, at their end (no goal: its heap grew under load)",
  };
  const arCount = async () => {
    let n = 0;
    let next: string | undefined;
    do {
      const page = await ctx.admin.list(`agentry.dev/v1alpha1`, "AgentRuntime", undefined, {
        limit: 500,
        ...(next ? { continue: next } : {}),
      });
      n += page.items.length;
      next = page.metadata.continue;
    } while (next);
    return n;
  };
  /** A fresh gateway once its cache holds every AgentRuntime: RSS (median of 5 readings 1 s apart), heap, JSON. */
  const measureFresh = async (label: string) => {
    const want = await arCount();
    const fresh = await startGateway(ctx, env, join(dir, `gateway-${label}.log`));
    const cached = () => metricSum(fresh.metrics, "agentry_gateway_cache_objects", { kind: "AgentRuntime" });
    await waitFor(
      `the ${label} gateway's cache to hold ${want} AgentRuntimes`,
      async () => (await cached()) >= want,
      {
        timeoutMs: 300_000,
        intervalMs: 500,
      },
    );
    const rss: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      rss.push(rssMiB(fresh.child.pid));
    }
    const m = {
      objects: await cached(),
      rssMiB: median(rss),
      heapBytes: await metricSum(fresh.metrics, "nodejs_heap_size_used_bytes"),
      jsonBytes: await metricSum(fresh.metrics, "agentry_gateway_cache_json_bytes", { kind: "AgentRuntime" }),
    };
    await stopNow(fresh.child);
    return m;
  };
  const before = await measureFresh("before-fill");
  const fillNs = await benchNamespace(ctx, "gwfill");
  say(`creating ${cachedN} AgentRuntimes for the gateway to cache`);
  const t0 = performance.now();
  await createAll(ctx.admin, cachedN, (i) => [agentRuntime(fillNs, `m-${i}`)]);
  say(`${cachedN} created in ${round((performance.now() - t0) / 1000, 1)} s`);
  const all = await arCount();
  const loadCached = () => metricSum(gw.metrics, "agentry_gateway_cache_objects", { kind: "AgentRuntime" });
  await waitFor("the load gateway's cache to hold them", async () => (await loadCached()) >= all, {
    timeoutMs: 300_000,
    intervalMs: 500,
  });
  figures[`gateway_rss_after_loads_with_${cachedN}_cached_mib`] = {
    value: round(rssMiB(gw.child.pid), 1),
    unit: "MiB",
    note: `the gateway that served the loads, once its cache held ${all} AgentRuntimes too (no goal)`,
  };
  await stopNow(gw.child);
  const after = await measureFresh("after-fill");
  const added = after.objects - before.objects;
  const per = (k: "rssMiB" | "heapBytes" | "jsonBytes", scale: number) =>
    round(((after[k] - before[k]) * scale) / added, 2);
  figures[`gateway_rss_with_${cachedN}_cached_mib`] = withGoal(
    {
      value: round(after.rssMiB, 1),
      unit: "MiB",
      note: `a gateway started fresh, once its cache held ${after.objects} AgentRuntimes (median of 5 readings 1 s apart)`,
    },
    "≤ 250",
    (v) => v <= 250,
  );
  figures["gateway_rss_fresh_mib"] = {
    value: round(before.rssMiB, 1),
    unit: "MiB",
    note: `the same, started before the fill (${before.objects} cached)`,
  };
  figures["cache_rss_kib_per_object"] = {
    value: per("rssMiB", 1024),
    unit: "KiB",
    note: `RSS difference of the two fresh gateways ÷ ${added} objects`,
  };
  figures["cache_heap_kib_per_object"] = {
    value: per("heapBytes", 1 / 1024),
    unit: "KiB",
    note: "V8 heap used (nodejs_heap_size_used_bytes) difference ÷ objects",
  };
  figures["cache_json_kib_per_object"] = {
    value: per("jsonBytes", 1 / 1024),
    unit: "KiB",
    note: "serialised JSON held (agentry_gateway_cache_json_bytes) difference ÷ objects",
  };

  return {
    name: "gateway",
    title:
      "Gateway (issue 22): reads from its cache, creates, memory; vs bare Express hello and the apiserver",
    date: new Date().toISOString(),
    sizes: {
      runs,
      secondsPerLoad: seconds,
      listItems,
      cachedObjects: cachedN,
      gateway: "dist/gateway/main.js (compiled)",
      auditDatabase: "PostgreSQL (fsync off)",
      loadTool: "autocannon 9.0.0 (in the bench process)",
    },
    figures,
    notes: [
      `Loads per run, in this order: ${LOADS.map(([op, t, c]) => `${t}${op === "hello" ? "" : ` ${op}`} c=${c}`).join(", ")}; ` +
        "each gateway list and get at c=50 right after a hello load of its own, the hello its ratio is taken against.",
      "Hello: Express 5's hello-world (GET / → 'Hello World!') in its own Node process. List: GET of a namespace " +
        `holding ${listItems} AgentRuntimes, no limit; get: GET of one of them. Create: POST of a new AgentRuntime per request (deleted after each load).`,
      "Gateway: static bearer token of a system:masters member; reads answered from its cache after a (cached) " +
        "SubjectAccessReview, creates impersonated; per-identity and per-address rate limits and its apiserver client limit " +
        "lifted; request log at info level to a file. Apiserver: the kubeconfig's bearer token (system:masters) over TLS.",
      ...problems,
    ],
  };
}
