// Gateway settings from flags or environment variables; `--help` lists them.
import { formatDuration } from "../lib/cli/duration.ts";
import { defineFlags, logLevelFlag, metricsAddrFlag, type Warn } from "../lib/cli/flags.ts";
import type { AdmissionSettings } from "./routes/admit.ts";
import { DEFAULT_POOL_SIZE } from "./store/store.ts";

export interface GatewayConfig {
  listen: { host: string; port: number };
  /** Where /metrics is served: apart from the public port, which answers it 404. */
  metricsAddr: { host: string; port: number };
  databaseUrl: string | undefined;
  /** Connections to PostgreSQL per replica (the embedded database always takes one). */
  databasePool: number;
  pgliteDir: string | undefined;
  /** Audit records older than this are deleted; 0 keeps them forever. */
  auditRetentionMs: number;
  /** How long an Idempotency-Key is remembered; after that it may be used again. */
  idempotencyTtlMs: number;
  redisUrl: string | undefined;
  tokensFile: string | undefined;
  tokensSecret: { namespace: string; name: string; key: string } | undefined;
  tokenReview: boolean;
  allowAnonymous: boolean;
  rate: number;
  burst: number;
  /** Requests per second (and burst) per client address, before authentication. */
  addressRate: number;
  addressBurst: number;
  /** TokenReviews per second (and burst) per client address for tokens not seen lately. */
  reviewRate: number;
  reviewBurst: number;
  /** Express "trust proxy": proxies whose X-Forwarded-For names the client; false: none. */
  trustProxy: string | number | false;
  bodyLimit: string;
  heartbeatMs: number;
  /** How often an open event stream's caller is authenticated and authorised again. */
  sseReauthorizeMs: number;
  /** Event streams one caller may have open at once (per replica). */
  sseMaxStreams: number;
  eventHistory: number;
  clientBufferBytes: number;
  kubeQps: number;
  kubeBurst: number;
  /** Lists and gets from the gateway's cache (informers of the four kinds). */
  cache: boolean;
  /** How long a read waits for the cache to hold the gateway's own writes before asking the apiserver. */
  cacheWaitMs: number;
  /** How long a SubjectAccessReview answer is remembered (RBAC changes the gateway sees forget it at once). */
  accessCacheTtlMs: number;
  logLevel: string;
  /** The gateway's data-plane signing key: its Secret and where its public keys are published. */
  signingKey: {
    namespace: string;
    secret: string;
    publicKeysConfigMap: string;
    rotateEveryMs: number;
    graceMs: number;
  };
  /** The admission rules' policy, as the webhook's flags of the same names. */
  admission: AdmissionSettings;
  /** Data plane: the pod address map (loopback processes standing in for pods), limits. */
  podAddressMap: string | undefined;
  maxUploadBytes: number;
  maxExecSeconds: number;
  /** How long a data-plane request waits for a workspace suspended for idleness to wake. */
  wakeWaitMs: number;
  /** Directory of the built web console served under /ui; empty: no console. */
  consoleDir: string;
  /** On SIGTERM: how long /readyz fails while new requests are still served (endpoints catch up). */
  shutdownDelayMs: number;
  /** Then: how long in-flight requests may take to finish before their connections are cut. */
  shutdownGraceMs: number;
}

const flags = defineFlags("gateway", {
  listen: {
    kind: "addr",
    env: "AGENTRY_GATEWAY_LISTEN",
    help: "host:port of the API",
    default: "0.0.0.0:8080",
  },
  "metrics-addr": metricsAddrFlag("AGENTRY_GATEWAY_METRICS_ADDR"),
  "database-url": { kind: "string", env: "DATABASE_URL", help: "PostgreSQL URL; unset: embedded PGlite" },
  "database-pool": {
    kind: "int",
    env: "AGENTRY_DATABASE_POOL",
    help: "connections to PostgreSQL per replica (each write holds one for its pending audit record; outcomes share one per batch)",
    default: DEFAULT_POOL_SIZE,
    min: 1,
  },
  "pglite-dir": {
    kind: "string",
    env: "AGENTRY_PGLITE_DIR",
    help: "directory of the embedded PGlite database (default: in memory)",
  },
  "audit-retention": {
    kind: "duration",
    env: "AGENTRY_AUDIT_RETENTION",
    help: "how long audit records are kept; 0: forever",
    default: "2160h",
    min: "0s",
    deprecated: [{ flag: "audit-retention-days", env: "AGENTRY_AUDIT_RETENTION_DAYS", unit: "d" }],
  },
  "idempotency-ttl": {
    kind: "duration",
    env: "AGENTRY_IDEMPOTENCY_TTL",
    help: "how long an Idempotency-Key is remembered",
    default: "24h",
    min: "1s",
    deprecated: [{ flag: "idempotency-ttl-hours", env: "AGENTRY_IDEMPOTENCY_TTL_HOURS", unit: "h" }],
  },
  "redis-url": {
    kind: "string",
    env: "REDIS_URL",
    help: "Redis URL for rate limits and event fan-out; unset: in process",
  },
  "tokens-file": {
    kind: "string",
    env: "AGENTRY_TOKENS_FILE",
    help: "YAML/JSON list of {sha256, user, groups} bearer tokens",
  },
  "tokens-secret": {
    kind: "string",
    env: "AGENTRY_TOKENS_SECRET",
    help: "namespace/name[/key] of a Secret holding that list (key tokens.yaml)",
  },
  "token-review": {
    kind: "bool",
    env: "AGENTRY_TOKEN_REVIEW",
    help: "accept Kubernetes tokens via TokenReview",
    default: true,
  },
  "allow-anonymous": {
    kind: "bool",
    env: "AGENTRY_ALLOW_ANONYMOUS",
    help: "serve requests without a token as system:anonymous",
    default: false,
  },
  rate: {
    kind: "number",
    env: "AGENTRY_RATE_LIMIT",
    help: "requests per second per identity",
    default: 50,
    min: 0.001,
  },
  burst: {
    kind: "number",
    env: "AGENTRY_RATE_BURST",
    help: "request burst per identity",
    default: 100,
    min: 1,
  },
  "address-rate": {
    kind: "number",
    env: "AGENTRY_ADDRESS_RATE_LIMIT",
    help: "requests per second per client address, before authentication",
    default: 100,
    min: 0.001,
  },
  "address-burst": {
    kind: "number",
    env: "AGENTRY_ADDRESS_RATE_BURST",
    help: "request burst per client address",
    default: 200,
    min: 1,
  },
  "token-review-rate": {
    kind: "number",
    env: "AGENTRY_TOKEN_REVIEW_RATE",
    help: "TokenReviews per second per client address for bearer tokens not seen lately (beyond: 429)",
    default: 5,
    min: 0.001,
  },
  "token-review-burst": {
    kind: "number",
    env: "AGENTRY_TOKEN_REVIEW_BURST",
    help: "TokenReview burst per client address",
    default: 20,
    min: 1,
  },
  "trust-proxy": {
    kind: "string",
    env: "AGENTRY_TRUST_PROXY",
    help: "proxies in front of the gateway whose X-Forwarded-For names the client (addresses, CIDRs or loopback, comma-separated; or a hop count); empty: the connection's peer is the client",
  },
  "body-limit": { kind: "string", env: "AGENTRY_BODY_LIMIT", help: "largest request body", default: "1mb" },
  heartbeat: {
    kind: "duration",
    env: "AGENTRY_SSE_HEARTBEAT",
    help: "time between event-stream heartbeats",
    default: "15s",
    min: "50ms",
  },
  "sse-reauthorize": {
    kind: "duration",
    env: "AGENTRY_SSE_REAUTHORIZE",
    help: "time between checks that an open event stream's caller still has its token and may still watch",
    default: "30s",
    min: "50ms",
  },
  "sse-max-streams": {
    kind: "int",
    env: "AGENTRY_SSE_MAX_STREAMS",
    help: "event streams one caller may have open at once (per replica)",
    default: 10,
    min: 1,
  },
  "event-history": {
    kind: "int",
    env: "AGENTRY_EVENT_HISTORY",
    help: "events kept per stream for Last-Event-ID resume",
    default: 1000,
    min: 1,
  },
  "client-buffer": {
    kind: "int",
    env: "AGENTRY_SSE_CLIENT_BUFFER",
    help: "bytes buffered for a slow event-stream client before it is dropped",
    default: 1048576,
    min: 1024,
  },
  "kube-qps": {
    kind: "number",
    env: "AGENTRY_KUBE_QPS",
    help: "requests per second to the apiserver",
    default: 500,
    min: 1,
  },
  "kube-burst": {
    kind: "int",
    env: "AGENTRY_KUBE_BURST",
    help: "request burst to the apiserver",
    default: 1000,
    min: 1,
  },
  cache: {
    kind: "bool",
    env: "AGENTRY_CACHE",
    help: "answer lists and gets from the gateway's own cache of the four kinds (watched cluster-wide) after a SubjectAccessReview; false: every read goes to the apiserver as the caller",
    default: true,
  },
  "cache-wait": {
    kind: "duration",
    env: "AGENTRY_CACHE_WAIT",
    help: "how long a read waits for the cache to hold the writes made through this replica before it asks the apiserver instead",
    default: "1s",
    min: "0s",
  },
  "access-cache-ttl": {
    kind: "duration",
    env: "AGENTRY_ACCESS_CACHE_TTL",
    help: "how long a SubjectAccessReview answer is remembered: the longest a revoked RoleBinding may still be honoured (changes to Roles and bindings the gateway sees forget answers at once)",
    default: "5s",
    min: "0s",
  },
  "allowed-registries": {
    kind: "list",
    env: "AGENTRY_ALLOWED_REGISTRIES",
    help: "admission: registries (or registry/path prefixes) images may come from, comma-separated; empty: any",
  },
  "allow-latest": {
    kind: "bool",
    env: "AGENTRY_ALLOW_LATEST",
    help: "admission: allow :latest and untagged images",
    default: false,
  },
  "large-fleet-replicas": {
    kind: "int",
    env: "AGENTRY_LARGE_FLEET_REPLICAS",
    help: "admission: warn when a SandboxFleet's maxReplicas exceeds this",
    default: 100,
    min: 1,
  },
  "check-secret-refs": {
    kind: "bool",
    env: "AGENTRY_CHECK_SECRET_REFS",
    help: "admission: deny references to missing Secrets or keys (read as the caller)",
    default: false,
  },
  namespace: {
    kind: "string",
    env: "POD_NAMESPACE",
    help: "the gateway's own namespace (its signing key Secret and public keys ConfigMap)",
    default: "default",
  },
  "signing-key-secret": {
    kind: "string",
    env: "AGENTRY_SIGNING_KEY_SECRET",
    help: "Secret holding the key that signs the gateway's data-plane tokens (created if missing)",
    default: "agentry-gateway-signing-key",
  },
  "public-keys-configmap": {
    kind: "string",
    env: "AGENTRY_PUBLIC_KEYS_CONFIGMAP",
    help: "ConfigMap where the gateway publishes its public keys for the operator to trust",
    default: "agentry-gateway-public-keys",
  },
  "signing-key-rotation": {
    kind: "duration",
    env: "AGENTRY_SIGNING_KEY_ROTATION",
    help: "how long a signing key signs before the next one takes over",
    default: "24h",
  },
  "signing-key-grace": {
    kind: "duration",
    env: "AGENTRY_SIGNING_KEY_GRACE",
    help: "how long a replaced key stays trusted (at most the rotation)",
    default: "1h",
    min: "0s",
  },
  "console-dir": {
    kind: "string",
    env: "AGENTRY_CONSOLE_DIR",
    help: "directory of the built web console (npm run build), served under /ui; empty: no console",
    default: "dist/console",
  },
  "pod-address-map": {
    kind: "string",
    env: "AGENTRY_POD_ADDRESS_MAP",
    help: 'data plane: JSON file {"namespace/pod": "127.0.0.1:port"}, the only pods dialled (loopback only; for local control planes); unset: pod IPs',
  },
  "max-upload-bytes": {
    kind: "int",
    env: "AGENTRY_MAX_UPLOAD_BYTES",
    help: "data plane: largest file upload to a workspace, in bytes",
    default: 64 << 20,
    min: 1,
  },
  "max-exec": {
    kind: "duration",
    env: "AGENTRY_MAX_EXEC",
    help: "data plane: longest time limit (timeoutSeconds) a command in a workspace may ask for; whole seconds",
    default: "10m",
    min: "1s",
    deprecated: [{ flag: "max-exec-seconds", env: "AGENTRY_MAX_EXEC_SECONDS", unit: "s" }],
  },
  "wake-wait": {
    kind: "duration",
    env: "AGENTRY_WAKE_WAIT",
    help: "data plane: how long a request to a workspace suspended for idleness waits for it to wake (placed and restored) before answering 503 with Retry-After",
    default: "30s",
    min: "0s",
  },
  "shutdown-delay": {
    kind: "duration",
    env: "AGENTRY_SHUTDOWN_DELAY",
    help: "on SIGTERM: how long /readyz fails while requests are still served, so load balancers stop sending",
    default: "5s",
    min: "0s",
  },
  "shutdown-grace": {
    kind: "duration",
    env: "AGENTRY_SHUTDOWN_GRACE",
    help: "then: how long in-flight requests may take to finish before their connections close",
    default: "20s",
    min: "0s",
  },
  "log-level": logLevelFlag,
});

export const usage = flags.usage;

export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  warn?: Warn,
): GatewayConfig | "help" {
  const v = flags.parse(argv, env, warn);
  if (v === "help") return "help";
  const rotateEveryMs = v["signing-key-rotation"];
  const graceMs = v["signing-key-grace"];
  if (graceMs > rotateEveryMs)
    throw new Error("--signing-key-grace must not be longer than --signing-key-rotation");
  if (v["max-exec"] % 1000 !== 0)
    throw new Error(`--max-exec must be whole seconds, got ${formatDuration(v["max-exec"])}`);
  const trust = (v["trust-proxy"] ?? "").trim();
  let tokensSecret: GatewayConfig["tokensSecret"];
  const secret = v["tokens-secret"];
  if (secret) {
    const [namespace, name, key = "tokens.yaml"] = secret.split("/");
    if (!namespace || !name) throw new Error(`--tokens-secret must be namespace/name[/key], got "${secret}"`);
    tokensSecret = { namespace, name, key };
  }
  return {
    listen: v.listen,
    metricsAddr: v["metrics-addr"],
    databaseUrl: v["database-url"],
    databasePool: v["database-pool"],
    pgliteDir: v["pglite-dir"],
    auditRetentionMs: v["audit-retention"],
    idempotencyTtlMs: v["idempotency-ttl"],
    redisUrl: v["redis-url"],
    tokensFile: v["tokens-file"],
    tokensSecret,
    tokenReview: v["token-review"],
    allowAnonymous: v["allow-anonymous"],
    rate: v.rate,
    burst: v.burst,
    addressRate: v["address-rate"],
    addressBurst: v["address-burst"],
    reviewRate: v["token-review-rate"],
    reviewBurst: v["token-review-burst"],
    trustProxy: trust === "" || trust === "false" ? false : /^\d+$/.test(trust) ? Number(trust) : trust,
    bodyLimit: v["body-limit"],
    heartbeatMs: v.heartbeat,
    sseReauthorizeMs: v["sse-reauthorize"],
    sseMaxStreams: v["sse-max-streams"],
    eventHistory: v["event-history"],
    clientBufferBytes: v["client-buffer"],
    kubeQps: v["kube-qps"],
    kubeBurst: v["kube-burst"],
    cache: v.cache,
    cacheWaitMs: v["cache-wait"],
    accessCacheTtlMs: v["access-cache-ttl"],
    logLevel: v["log-level"],
    signingKey: {
      namespace: v.namespace,
      secret: v["signing-key-secret"],
      publicKeysConfigMap: v["public-keys-configmap"],
      rotateEveryMs,
      graceMs,
    },
    admission: {
      policy: {
        allowedRegistries: v["allowed-registries"],
        allowLatest: v["allow-latest"],
        largeFleetReplicas: v["large-fleet-replicas"],
      },
      checkSecretRefs: v["check-secret-refs"],
    },
    consoleDir: v["console-dir"],
    podAddressMap: v["pod-address-map"],
    maxUploadBytes: v["max-upload-bytes"],
    maxExecSeconds: v["max-exec"] / 1000,
    wakeWaitMs: v["wake-wait"],
    shutdownDelayMs: v["shutdown-delay"],
    shutdownGraceMs: v["shutdown-grace"],
  };
}
