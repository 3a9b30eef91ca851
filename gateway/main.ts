// agentry gateway entry point: wiring only. Starts strictly: a configured database that is
// unreachable or not migrated, an unreachable Redis, or a missing tokens Secret ends the
// process with a message saying what to do, instead of serving a degraded API.
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "../lib/kube/kubeconfig.ts";
import { Redis } from "ioredis";
import { KubeClient, type KubeObject } from "../lib/kube/client.ts";
import { publishPublicKeys, SecretKeyRing } from "../lib/keyring.ts";
import { PodAddresses } from "../lib/kube/podaddresses.ts";
import { errorMessage, createLogger } from "../lib/log.ts";
import { createServer } from "../lib/http/nodehttp.ts";
import { createGateway, MAX_HEADER_BYTES } from "./app.ts";
import { AccessCache } from "./auth/access.ts";
import { createAuthenticator } from "./auth/authenticate.ts";
import { RbacWatch } from "./auth/rbacwatch.ts";
import { KINDS } from "../api/v1alpha1/index.ts";
import { ReadCache } from "./cache/readcache.ts";
import { TokenReviewer } from "./auth/tokenreview.ts";
import { parseTokens, type StaticTokens } from "./auth/tokens.ts";
import { loadConfig, usage } from "./config.ts";
import { configOrExit } from "../lib/cli/config.ts";
import { MemoryBus, type EventBus } from "./events/bus.ts";
import { EventHub } from "./events/hub.ts";
import { RedisBus } from "./events/redisbus.ts";
import { sseHandler } from "./events/sse.ts";
import { GatewayMetrics } from "./metrics.ts";
import { startMetricsServer } from "../lib/http/health.ts";
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from "./ratelimit.ts";
import type { EmbeddedPostgres } from "./store/embedded.ts";
import { migrate, pendingMigrations } from "./store/migrations.ts";
import { createPool, PgStore } from "./store/store.ts";
import { closeGracefully } from "../lib/http/shutdown.ts";

function fail(message: string): never {
  process.stderr.write(`agentry gateway: ${message}\n`);
  process.exit(1);
}

const cfg = configOrExit("gateway", loadConfig, usage);
const log = createLogger(cfg.logLevel, "gateway");
const metrics = new GatewayMetrics();

const kc = KubeConfig.fromDefault();
const kube = new KubeClient(kc, { qps: cfg.kubeQps, burst: cfg.kubeBurst, userAgent: "agentry-gateway" });

// Database: the configured PostgreSQL (migrated beforehand), or embedded PGlite (migrated here).
let embedded: EmbeddedPostgres | undefined;
let dbUrl = cfg.databaseUrl;
if (!dbUrl) {
  // Loaded only when used: PGlite's module is large, and a gateway with PostgreSQL never needs it.
  const { startEmbeddedPostgres } = await import("./store/embedded.ts");
  embedded = await startEmbeddedPostgres(cfg.pgliteDir);
  dbUrl = embedded.url;
}
const pool = createPool(dbUrl, embedded ? 1 : cfg.databasePool);
try {
  if (embedded) await migrate(pool);
  const pending = await pendingMigrations(pool);
  if (pending.length)
    fail(
      `the database schema is not current (pending: ${pending.join(", ")}); run \`npm run gateway:migrate\` (node --import tsx gateway/migrate.ts) with the same DATABASE_URL first`,
    );
} catch (err) {
  fail(
    `the database at DATABASE_URL is unreachable: ${errorMessage(err)}; check the URL and that PostgreSQL is up`,
  );
}
const store = new PgStore(
  pool,
  { auditRetentionMs: cfg.auditRetentionMs, idempotencyTtlMs: cfg.idempotencyTtlMs },
  log,
);
metrics.auditOutcomesPending = () => store.pendingOutcomes;
// Retention: every 10 minutes (first a minute after start), each replica; deletes are batched.
const prune = () =>
  store
    .prune()
    .then((n) => {
      if (n.audit || n.idempotency)
        log.info("pruned the audit log and idempotency keys", {
          auditRecords: n.audit,
          idempotencyKeys: n.idempotency,
        });
    })
    .catch((err: unknown) =>
      log.warn("pruning the audit database failed; trying again later", { error: String(err) }),
    );
setTimeout(() => void prune(), 60_000).unref();
setInterval(() => void prune(), 600_000).unref();

// Static tokens from a file or a Secret (re-read every 30 s so rotation needs no restart).
let tokens: StaticTokens = new Map();
async function loadTokens(): Promise<StaticTokens> {
  if (cfg.tokensFile) return parseTokens(readFileSync(cfg.tokensFile, "utf8"), cfg.tokensFile);
  if (cfg.tokensSecret) {
    const { namespace, name, key } = cfg.tokensSecret;
    const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
      "v1",
      "Secret",
      namespace,
      name,
    );
    const data = secret.data?.[key];
    if (!data) throw new Error(`Secret ${namespace}/${name} has no key ${key}`);
    return parseTokens(
      Buffer.from(data, "base64").toString("utf8"),
      `Secret ${namespace}/${name} key ${key}`,
    );
  }
  return new Map();
}
try {
  tokens = await loadTokens();
} catch (err) {
  fail(`bearer tokens could not be loaded: ${errorMessage(err)}`);
}
if (cfg.tokensFile || cfg.tokensSecret)
  setInterval(() => {
    loadTokens()
      .then((t) => (tokens = t))
      .catch((err: unknown) =>
        log.warn("reloading bearer tokens failed; keeping the previous ones", { error: String(err) }),
      );
  }, 30_000).unref();

// The gateway's own data-plane signing key (rotated like the operator's) and its public keys,
// published for the operator to put into every namespace's trust bundle. The data-plane
// routes sign with it; a key that cannot be kept is logged, not fatal (those routes answer 503).
const sk = cfg.signingKey;
const signingKeys = new SecretKeyRing(kube, {
  namespace: sk.namespace,
  name: sk.secret,
  issuer: "agentry-gateway",
  policy: { rotateEveryMs: sk.rotateEveryMs, graceMs: sk.graceMs },
  log,
});
async function syncSigningKeys(): Promise<void> {
  let next: number;
  try {
    await signingKeys.sync();
    await publishPublicKeys(
      kube,
      { namespace: sk.namespace, name: sk.publicKeysConfigMap, owner: "agentry-gateway" },
      signingKeys.publicKeys(),
    );
    next = Math.min(60_000, Math.max(1000, signingKeys.untilNextChange()));
  } catch (err) {
    log.error("the gateway's signing key could not be kept or published; retrying in 30 s", {
      secret: signingKeys.where,
      error: errorMessage(err),
    });
    next = 30_000;
  }
  setTimeout(() => void syncSigningKeys(), next).unref();
}
await syncSigningKeys();

// Redis: rate limits and event fan-out shared by all replicas; in process without it.
let redis: Redis | undefined;
let bus: EventBus;
let limiter: RateLimiter;
let addressLimiter: RateLimiter;
let reviewLimiter: RateLimiter;
if (cfg.redisUrl) {
  redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true, enableOfflineQueue: true });
  redis.on("error", (err: Error) => log.warn("redis error", { error: err.message }));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    fail(`Redis at REDIS_URL is unreachable: ${errorMessage(err)}`);
  }
  bus = new RedisBus(redis, { historySize: cfg.eventHistory }, log);
  limiter = new RedisRateLimiter(redis, { rate: cfg.rate, burst: cfg.burst }, log);
  addressLimiter = new RedisRateLimiter(
    redis,
    { rate: cfg.addressRate, burst: cfg.addressBurst },
    log,
    "agentry:gateway:rate-address:",
  );
  reviewLimiter = new RedisRateLimiter(
    redis,
    { rate: cfg.reviewRate, burst: cfg.reviewBurst },
    log,
    "agentry:gateway:rate-review:",
  );
} else {
  bus = new MemoryBus(cfg.eventHistory);
  limiter = new MemoryRateLimiter({ rate: cfg.rate, burst: cfg.burst });
  addressLimiter = new MemoryRateLimiter({ rate: cfg.addressRate, burst: cfg.addressBurst });
  reviewLimiter = new MemoryRateLimiter({ rate: cfg.reviewRate, burst: cfg.reviewBurst });
}
const hub = new EventHub(kube, bus, log);

// Authorisation answers, remembered briefly and forgotten when RBAC objects change; the read
// cache of the four kinds (filled in the background: reads go to the apiserver until it is).
const access = new AccessCache(kube, {
  ttlMs: cfg.accessCacheTtlMs,
  onLookup: (result) => metrics.countAccessLookup(result),
});
const rbacWatch = new RbacWatch((namespace) => access.invalidate(namespace));
rbacWatch.start(kube, log);
let cache: ReadCache | undefined;
if (cfg.cache) {
  cache = new ReadCache(KINDS, { waitMs: cfg.cacheWaitMs });
  cache.start(kube, log);
  const c = cache;
  metrics.cacheSizes = () => c.sizes();
}

const authenticate = createAuthenticator({
  tokens: () => tokens,
  ...(cfg.tokenReview
    ? { tokenReview: new TokenReviewer(kube, { onReview: (result) => metrics.tokenReviews.inc({ result }) }) }
    : {}),
  allowAnonymous: cfg.allowAnonymous,
  reviewGate: (address) => reviewLimiter.take(`review:${address}`),
});
// Aborted on SIGTERM (see shutdown below): open event streams are told to reconnect.
const stop = new AbortController();
let stopping = false;
const app = createGateway({
  kube,
  store,
  limiter,
  metrics,
  log,
  bodyLimit: cfg.bodyLimit,
  admission: cfg.admission,
  addressLimiter,
  ...(cfg.trustProxy !== false ? { trustProxy: cfg.trustProxy } : {}),
  authenticate,
  ...(cfg.consoleDir ? { consoleDir: cfg.consoleDir } : {}),
  ...(cache ? { cache } : {}),
  access,
  dataPlane: {
    addresses: new PodAddresses(cfg.podAddressMap, (r) =>
      log.debug("pod address", {
        pod: r.pod,
        via: r.via,
        ...(r.via !== "none" ? { address: r.address } : {}),
      }),
    ),
    signer: () => signingKeys.signer(),
    maxUploadBytes: cfg.maxUploadBytes,
    maxExecSeconds: cfg.maxExecSeconds,
    wakeWaitMs: cfg.wakeWaitMs,
  },
  watch: sseHandler(hub, metrics, {
    review: access.review,
    heartbeatMs: cfg.heartbeatMs,
    clientBufferBytes: cfg.clientBufferBytes,
    authenticate,
    reauthorizeMs: cfg.sseReauthorizeMs,
    maxStreamsPerCaller: cfg.sseMaxStreams,
    shutdown: stop.signal,
  }),
  ready: async () => {
    if (stopping) return "shutting down";
    try {
      await store.ping();
      return undefined;
    } catch {
      return "the audit database is unreachable";
    }
  },
});
const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app).listen(
  cfg.listen.port,
  cfg.listen.host,
);
await new Promise<void>((resolve, reject) => {
  server.once("listening", resolve);
  server.once("error", reject);
}).catch((err: unknown) => fail(`cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${String(err)}`));
// /metrics on a port of its own: the API's port (public, often behind an Ingress) answers 404.
const metricsServer = await startMetricsServer(cfg.metricsAddr, metrics.registry).catch((err: unknown) =>
  fail(`cannot serve /metrics on ${cfg.metricsAddr.host}:${cfg.metricsAddr.port}: ${String(err)}`),
);
log.info("gateway listening", {
  port: (server.address() as AddressInfo).port,
  metricsPort: metricsServer.port,
  database: embedded ? "embedded PGlite" : "postgres",
  cache: cfg.cache,
  redis: Boolean(redis),
});

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  // 1. /readyz fails while requests are still served, so the Service's endpoints drop this
  //    replica before it stops taking connections.
  log.info("shutting down: not ready, still serving", { signal, delayMs: cfg.shutdownDelayMs });
  await new Promise((resolve) => setTimeout(resolve, cfg.shutdownDelayMs));
  // 2. Event streams are told to reconnect elsewhere; no new connection is accepted; requests
  //    in flight finish within the grace period, after which their connections are cut.
  stop.abort();
  log.info("draining in-flight requests", { graceMs: cfg.shutdownGraceMs });
  await closeGracefully(server, cfg.shutdownGraceMs, () =>
    log.warn("grace period over: closing the connections still open"),
  );
  metricsServer.server.close();
  await Promise.all([cache?.stop(), rbacWatch.stop()]);
  await hub.close();
  await bus.close();
  redis?.disconnect();
  if (!(await store.flushAudits(5_000)))
    log.error("audit outcomes not written before exit; their records stay pending", {
      outcomes: store.pendingOutcomes,
    });
  await pool.end().catch(() => undefined);
  await embedded?.stop().catch(() => undefined);
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("unhandledRejection", (err) => {
  log.error("unhandled rejection", { error: errorMessage(err) });
});
