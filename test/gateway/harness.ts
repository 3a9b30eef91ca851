// Starts the gateway for a test: in process (the app factory on a free loopback port, with
// the real control plane, and the embedded PGlite or a fresh database on the real
// PostgreSQL), or as a child process running gateway/main.ts.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { KubeClient } from "../../lib/kube/client.ts";
import { silentLogger } from "../../lib/log.ts";
import { createServer } from "node:http";
import { createGateway, MAX_HEADER_BYTES } from "../../gateway/app.ts";
import { KINDS } from "../../api/v1alpha1/index.ts";
import { AccessCache } from "../../gateway/auth/access.ts";
import { createAuthenticator } from "../../gateway/auth/authenticate.ts";
import { RbacWatch } from "../../gateway/auth/rbacwatch.ts";
import { ReadCache } from "../../gateway/cache/readcache.ts";
import type { Identity } from "../../gateway/auth/identity.ts";
import { TokenReviewer } from "../../gateway/auth/tokenreview.ts";
import { hashToken } from "../../gateway/auth/tokens.ts";
import { MemoryBus } from "../../gateway/events/bus.ts";
import { EventHub } from "../../gateway/events/hub.ts";
import { sseHandler } from "../../gateway/events/sse.ts";
import { GatewayMetrics } from "../../gateway/metrics.ts";
import { startMetricsServer } from "../../lib/http/health.ts";
import { MemoryRateLimiter, type RateLimiter } from "../../gateway/ratelimit.ts";
import type { DataPlaneOptions } from "../../gateway/dataplane/common.ts";
import type { AdmissionSettings } from "../../gateway/routes/admit.ts";
import { startEmbeddedPostgres } from "../../gateway/store/embedded.ts";
import { migrate } from "../../gateway/store/migrations.ts";
import { createPool, PgStore } from "../../gateway/store/store.ts";
import { kubeConfig, kubectl, waitFor } from "../harness/cluster.ts";
import { startProgram } from "../harness/process.ts";
import { repoRoot } from "../harness/paths.ts";

type After = { after: (fn: () => Promise<void>) => void };

export const ADMIN_TOKEN = "admin-token-for-tests";
export const ADMIN: Identity = { user: "gateway-test-admin", groups: ["system:masters"], via: "token" };

export interface Gateway {
  url: string;
  /** Where /metrics is served: a port of its own, as gateway/main.ts serves it. */
  metricsUrl: string;
  pool: pg.Pool;
  /** Resolves once the audit outcomes of the answers given so far are in the database. */
  auditWritten(): Promise<void>;
  /** Stops the embedded database (PGlite), when the gateway uses it. */
  stopDatabase?: () => Promise<void>;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function call(base: string, method: string, path: string, o: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  const token = o.token === undefined ? ADMIN_TOKEN : o.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
    headers["content-type"] ??= method === "PATCH" ? "application/merge-patch+json" : "application/json";
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A fresh database on the test PostgreSQL server, dropped when the test ends. */
export async function freshDatabase(t: After, serverUrl: string): Promise<string> {
  const name = `gw_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.after(async () => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A SandboxFleet made with kubectl (not through the gateway), for Workspaces that name it:
 * the gateway's admission rules deny a Workspace whose fleet does not exist.
 */
export async function createFleet(namespace: string, name = "fleet"): Promise<void> {
  const fleet = {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "SandboxFleet",
    metadata: { name, namespace },
    spec: { template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 2 },
  };
  const r = await kubectl(["apply", "-f", "-"], JSON.stringify(fleet));
  if (r.code !== 0) throw new Error(`could not create SandboxFleet ${namespace}/${name}: ${r.stderr}`);
}

/** Grants `user` `verbs` on agentry.dev `resources` in `ns`: a Role and a RoleBinding named `name`. */
export async function grant(
  ns: string,
  user: string,
  rule: { name: string; resources: string[]; verbs: string[] },
): Promise<void> {
  const { name, resources, verbs } = rule;
  const manifest = [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name, namespace: ns },
      rules: [{ apiGroups: ["agentry.dev"], resources, verbs }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace: ns },
      subjects: [{ kind: "User", name: user, apiGroup: "rbac.authorization.k8s.io" }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    },
  ];
  const r = await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: manifest }),
  );
  if (r.code !== 0) throw new Error(`could not grant ${user} ${verbs.join(",")} in ${ns}: ${r.stderr}`);
}

export interface InProcessOptions {
  tokens?: Record<string, Identity>;
  databaseUrl?: string;
  tokenReview?: boolean;
  allowAnonymous?: boolean;
  limiter?: RateLimiter;
  heartbeatMs?: number;
  admission?: AdmissionSettings;
  /** Serve the data plane: pod addresses (PodBackends' map) and the signing key. */
  dataPlane?: DataPlaneOptions;
  /** Serve the built web console from this directory under /ui. */
  consoleDir?: string;
  /** Answer reads from the gateway's cache, as main.ts does (default true); waits for it to fill. */
  cache?: boolean;
  /** How long a read waits for the cache to hold the gateway's writes (default 1 s, as main.ts). */
  cacheWaitMs?: number;
  /** How long SubjectAccessReview answers are remembered (default 5 s, as main.ts). */
  accessTtlMs?: number;
  /** Watch RBAC objects to forget remembered answers at once (default true, as main.ts). */
  rbacWatch?: boolean;
}

/** The gateway app in this process, as main.ts wires it (in-process bus and limiter). */
export async function startGateway(t: After, options: InProcessOptions = {}): Promise<Gateway> {
  const kube = new KubeClient(kubeConfig(), { qps: 1000, burst: 2000 });
  let stopDatabase: (() => Promise<void>) | undefined;
  let url = options.databaseUrl;
  if (!url) {
    const embedded = await startEmbeddedPostgres();
    stopDatabase = () => embedded.stop();
    url = embedded.url;
  }
  const pool = createPool(url, options.databaseUrl ? 5 : 1);
  await migrate(pool);
  const tokens = new Map<string, Identity>([[hashToken(ADMIN_TOKEN), ADMIN]]);
  for (const [token, who] of Object.entries(options.tokens ?? {})) tokens.set(hashToken(token), who);
  const metrics = new GatewayMetrics(false);
  const log = silentLogger();
  const hub = new EventHub(kube, new MemoryBus(100), log);
  const access = new AccessCache(kube, {
    ...(options.accessTtlMs !== undefined ? { ttlMs: options.accessTtlMs } : {}),
    onLookup: (result) => metrics.accessLookups.inc({ result }),
  });
  const rbac = options.rbacWatch === false ? undefined : new RbacWatch((ns) => access.invalidate(ns));
  rbac?.start(kube, log);
  const cache =
    options.cache === false
      ? undefined
      : new ReadCache(KINDS, options.cacheWaitMs !== undefined ? { waitMs: options.cacheWaitMs } : {});
  if (cache) {
    cache.start(kube, log);
    metrics.cacheSizes = () => cache.sizes();
    await waitFor("the gateway's cache to fill", () => cache.synced);
  }
  const store = new PgStore(pool);
  metrics.auditOutcomesPending = () => store.pendingOutcomes;
  const app = createGateway({
    kube,
    store,
    access,
    ...(cache ? { cache } : {}),
    limiter: options.limiter ?? new MemoryRateLimiter({ rate: 10_000, burst: 10_000 }),
    metrics,
    log,
    authenticate: createAuthenticator({
      tokens: () => tokens,
      ...(options.tokenReview ? { tokenReview: new TokenReviewer(kube) } : {}),
      allowAnonymous: options.allowAnonymous ?? false,
    }),
    watch: sseHandler(hub, metrics, {
      review: access.review,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      clientBufferBytes: 1 << 20,
    }),
    ...(options.admission ? { admission: options.admission } : {}),
    ...(options.dataPlane ? { dataPlane: options.dataPlane } : {}),
    ...(options.consoleDir ? { consoleDir: options.consoleDir } : {}),
  });
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app).listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const metricsServer = await startMetricsServer({ host: "127.0.0.1", port: 0 }, metrics.registry);
  let dbStopped = false;
  t.after(async () => {
    metricsServer.server.close();
    server.closeAllConnections();
    server.close();
    await hub.close();
    await Promise.all([cache?.stop(), rbac?.stop()]);
    await store.flushAudits(5_000);
    await pool.end().catch(() => undefined);
    if (!dbStopped) await stopDatabase?.().catch(() => undefined);
  });
  return {
    url: base,
    metricsUrl: `http://127.0.0.1:${metricsServer.port}/metrics`,
    pool,
    auditWritten: async () => {
      if (!(await store.flushAudits(30_000))) throw new Error("audit outcomes still not written after 30 s");
    },
    ...(stopDatabase
      ? {
          stopDatabase: async () => {
            dbStopped = true;
            await stopDatabase();
          },
        }
      : {}),
    call: (method, path, o) => call(base, method, path, o),
  };
}

export interface GatewayProcess {
  url: string;
  metricsUrl: string;
  child: ChildProcess;
  logs: string[];
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
}

/** gateway/main.ts as a child process with the given environment (tokens file, URLs...). */
export async function startGatewayProcess(t: After, env: Record<string, string>): Promise<GatewayProcess> {
  // Start-up compiles TypeScript (tsx) and migrates the embedded database: on a loaded
  // 2-core machine that alone has taken most of a minute.
  const {
    child,
    logs,
    ready: ports,
  } = await startProgram(t, {
    what: "the gateway",
    script: join(repoRoot, "gateway", "main.ts"),
    args: ["--listen=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"],
    // No readiness delay on SIGTERM unless a test asks for one: stops stay quick.
    env: { ...process.env, AGENTRY_SHUTDOWN_DELAY: "0s", ...env },
    ready: (l) =>
      l.includes("gateway listening") ? (JSON.parse(l) as { port: number; metricsPort: number }) : undefined,
    timeoutMs: 120_000,
  });
  const base = `http://127.0.0.1:${ports.port}`;
  return {
    url: base,
    metricsUrl: `http://127.0.0.1:${ports.metricsPort}/metrics`,
    child,
    logs,
    call: (method, path, o) => call(base, method, path, o),
  };
}
