// Gateway settings from flags or environment variables; `--help` lists them.
import { parseArgs } from "node:util";
import { parseDuration } from "../lib/cli/duration.ts";
import type { AdmissionSettings } from "./routes/admit.ts";

export interface GatewayConfig {
  listen: { host: string; port: number };
  databaseUrl: string | undefined;
  pgliteDir: string | undefined;
  /** Audit records older than this many days are deleted; 0 keeps them forever. */
  auditRetentionDays: number;
  /** An Idempotency-Key is remembered this many hours; after that it may be used again. */
  idempotencyTtlHours: number;
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

interface Option {
  env: string;
  help: string;
  default?: string;
}

const options: Record<string, Option> = {
  listen: { env: "AGENTRY_GATEWAY_LISTEN", help: "host:port to serve on", default: "0.0.0.0:8080" },
  "database-url": { env: "DATABASE_URL", help: "PostgreSQL URL; unset: embedded PGlite" },
  "pglite-dir": {
    env: "AGENTRY_PGLITE_DIR",
    help: "directory of the embedded PGlite database (default: in memory)",
  },
  "audit-retention-days": {
    env: "AGENTRY_AUDIT_RETENTION_DAYS",
    help: "days to keep audit records; 0: forever",
    default: "90",
  },
  "idempotency-ttl-hours": {
    env: "AGENTRY_IDEMPOTENCY_TTL_HOURS",
    help: "hours an Idempotency-Key is remembered",
    default: "24",
  },
  "redis-url": { env: "REDIS_URL", help: "Redis URL for rate limits and event fan-out; unset: in process" },
  "tokens-file": {
    env: "AGENTRY_TOKENS_FILE",
    help: "YAML/JSON list of {sha256, user, groups} bearer tokens",
  },
  "tokens-secret": {
    env: "AGENTRY_TOKENS_SECRET",
    help: "namespace/name[/key] of a Secret holding that list (key tokens.yaml)",
  },
  "token-review": {
    env: "AGENTRY_TOKEN_REVIEW",
    help: "true|false: accept Kubernetes tokens via TokenReview",
    default: "true",
  },
  "allow-anonymous": {
    env: "AGENTRY_ALLOW_ANONYMOUS",
    help: "true|false: serve requests without a token as system:anonymous",
    default: "false",
  },
  rate: { env: "AGENTRY_RATE_LIMIT", help: "requests per second per identity", default: "50" },
  burst: { env: "AGENTRY_RATE_BURST", help: "request burst per identity", default: "100" },
  "address-rate": {
    env: "AGENTRY_ADDRESS_RATE_LIMIT",
    help: "requests per second per client address, before authentication",
    default: "100",
  },
  "address-burst": {
    env: "AGENTRY_ADDRESS_RATE_BURST",
    help: "request burst per client address",
    default: "200",
  },
  "token-review-rate": {
    env: "AGENTRY_TOKEN_REVIEW_RATE",
    help: "TokenReviews per second per client address for bearer tokens not seen lately (beyond: 429)",
    default: "5",
  },
  "token-review-burst": {
    env: "AGENTRY_TOKEN_REVIEW_BURST",
    help: "TokenReview burst per client address",
    default: "20",
  },
  "trust-proxy": {
    env: "AGENTRY_TRUST_PROXY",
    help: "proxies in front of the gateway whose X-Forwarded-For names the client (addresses, CIDRs or loopback, comma-separated; or a hop count); empty: the connection's peer is the client",
  },
  "body-limit": { env: "AGENTRY_BODY_LIMIT", help: "largest request body", default: "1mb" },
  heartbeat: { env: "AGENTRY_SSE_HEARTBEAT", help: "seconds between event-stream heartbeats", default: "15" },
  "sse-reauthorize": {
    env: "AGENTRY_SSE_REAUTHORIZE",
    help: "seconds between checks that an open event stream's caller still has its token and may still watch",
    default: "30",
  },
  "sse-max-streams": {
    env: "AGENTRY_SSE_MAX_STREAMS",
    help: "event streams one caller may have open at once (per replica)",
    default: "10",
  },
  "event-history": {
    env: "AGENTRY_EVENT_HISTORY",
    help: "events kept per stream for Last-Event-ID resume",
    default: "1000",
  },
  "client-buffer": {
    env: "AGENTRY_SSE_CLIENT_BUFFER",
    help: "bytes buffered for a slow event-stream client before it is dropped",
    default: "1048576",
  },
  "kube-qps": { env: "AGENTRY_KUBE_QPS", help: "requests per second to the apiserver", default: "500" },
  "kube-burst": { env: "AGENTRY_KUBE_BURST", help: "request burst to the apiserver", default: "1000" },
  "allowed-registries": {
    env: "AGENTRY_ALLOWED_REGISTRIES",
    help: "admission: registries (or registry/path prefixes) images may come from, comma-separated; empty: any",
  },
  "allow-latest": {
    env: "AGENTRY_ALLOW_LATEST",
    help: "admission: true|false: allow :latest and untagged images",
    default: "false",
  },
  "large-fleet-replicas": {
    env: "AGENTRY_LARGE_FLEET_REPLICAS",
    help: "admission: warn when a SandboxFleet's maxReplicas exceeds this",
    default: "100",
  },
  "check-secret-refs": {
    env: "AGENTRY_CHECK_SECRET_REFS",
    help: "admission: true|false: deny references to missing Secrets or keys (read as the caller)",
    default: "false",
  },
  namespace: {
    env: "POD_NAMESPACE",
    help: "the gateway's own namespace (its signing key Secret and public keys ConfigMap)",
    default: "default",
  },
  "signing-key-secret": {
    env: "AGENTRY_SIGNING_KEY_SECRET",
    help: "Secret holding the key that signs the gateway's data-plane tokens (created if missing)",
    default: "agentry-gateway-signing-key",
  },
  "public-keys-configmap": {
    env: "AGENTRY_PUBLIC_KEYS_CONFIGMAP",
    help: "ConfigMap where the gateway publishes its public keys for the operator to trust",
    default: "agentry-gateway-public-keys",
  },
  "signing-key-rotation": {
    env: "AGENTRY_SIGNING_KEY_ROTATION",
    help: "how long a signing key signs before the next one takes over (a duration)",
    default: "24h",
  },
  "signing-key-grace": {
    env: "AGENTRY_SIGNING_KEY_GRACE",
    help: "how long a replaced key stays trusted (at most the rotation)",
    default: "1h",
  },
  "console-dir": {
    env: "AGENTRY_CONSOLE_DIR",
    help: "directory of the built web console (npm run build), served under /ui; empty: no console",
    default: "dist/console",
  },
  "pod-address-map": {
    env: "AGENTRY_POD_ADDRESS_MAP",
    help: 'data plane: JSON file {"namespace/pod": "127.0.0.1:port"}, the only pods dialled (loopback only; for local control planes); unset: pod IPs',
  },
  "max-upload-bytes": {
    env: "AGENTRY_MAX_UPLOAD_BYTES",
    help: "data plane: largest file upload to a workspace, in bytes",
    default: String(64 << 20),
  },
  "max-exec-seconds": {
    env: "AGENTRY_MAX_EXEC_SECONDS",
    help: "data plane: longest timeoutSeconds a command in a workspace may ask for",
    default: "600",
  },
  "wake-wait": {
    env: "AGENTRY_WAKE_WAIT",
    help: "data plane: how long a request to a workspace suspended for idleness waits for it to wake (placed and restored) before answering 503 with Retry-After (a duration)",
    default: "30s",
  },
  "shutdown-delay": {
    env: "AGENTRY_SHUTDOWN_DELAY",
    help: "on SIGTERM: how long /readyz fails while requests are still served, so load balancers stop sending (a duration)",
    default: "5s",
  },
  "shutdown-grace": {
    env: "AGENTRY_SHUTDOWN_GRACE",
    help: "then: how long in-flight requests may take to finish before their connections close (a duration)",
    default: "20s",
  },
  "log-level": { env: "AGENTRY_LOG_LEVEL", help: "error|warn|info|debug", default: "info" },
};

export function usage(): string {
  const lines = Object.entries(options).map(
    ([name, o]) =>
      `  --${name.padEnd(16)} ${o.help} (${o.env})${o.default !== undefined ? ` [${o.default}]` : ""}`,
  );
  return `agentry gateway\n\nOptions:\n${lines.join("\n")}\n  --help           print this help\n`;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): GatewayConfig | "help" {
  const spec = Object.fromEntries(Object.keys(options).map((k) => [k, { type: "string" as const }]));
  const { values } = parseArgs({ args: argv, options: { ...spec, help: { type: "boolean" } }, strict: true });
  if (values.help) return "help";
  const get = (name: string): string | undefined => {
    const v = (values as Record<string, string | undefined>)[name];
    const o = options[name]!;
    return v ?? (env[o.env] || undefined) ?? o.default;
  };
  const num = (name: string, min: number): number => {
    const text = get(name) ?? "";
    const n = Number(text);
    if (!Number.isFinite(n) || n < min)
      throw new Error(`--${name} must be a number >= ${min}, got "${text}"`);
    return n;
  };
  const bool = (name: string): boolean => {
    const v = (get(name) ?? "").toLowerCase();
    if (v !== "true" && v !== "false") throw new Error(`--${name} must be true or false, got "${v}"`);
    return v === "true";
  };
  const [host, portText] = (get("listen") ?? "").split(/:(?=[^:]*$)/);
  const listenPort = Number(portText);
  if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535)
    throw new Error(`--listen must be host:port, got "${get("listen")}"`);
  const rotateEveryMs = parseDuration("signing-key-rotation", get("signing-key-rotation") ?? "");
  const graceMs = parseDuration("signing-key-grace", get("signing-key-grace") ?? "");
  if (rotateEveryMs <= 0) throw new Error("--signing-key-rotation must be longer than 0");
  if (graceMs > rotateEveryMs)
    throw new Error("--signing-key-grace must not be longer than --signing-key-rotation");
  const trust = (get("trust-proxy") ?? "").trim();
  let tokensSecret: GatewayConfig["tokensSecret"];
  const secret = get("tokens-secret");
  if (secret) {
    const [namespace, name, key = "tokens.yaml"] = secret.split("/");
    if (!namespace || !name) throw new Error(`--tokens-secret must be namespace/name[/key], got "${secret}"`);
    tokensSecret = { namespace, name, key };
  }
  return {
    listen: { host: host || "0.0.0.0", port: listenPort },
    databaseUrl: get("database-url"),
    pgliteDir: get("pglite-dir"),
    auditRetentionDays: num("audit-retention-days", 0),
    idempotencyTtlHours: num("idempotency-ttl-hours", 0.001),
    redisUrl: get("redis-url"),
    tokensFile: get("tokens-file"),
    tokensSecret,
    tokenReview: bool("token-review"),
    allowAnonymous: bool("allow-anonymous"),
    rate: num("rate", 0.001),
    burst: num("burst", 1),
    addressRate: num("address-rate", 0.001),
    addressBurst: num("address-burst", 1),
    reviewRate: num("token-review-rate", 0.001),
    reviewBurst: num("token-review-burst", 1),
    trustProxy: trust === "" || trust === "false" ? false : /^\d+$/.test(trust) ? Number(trust) : trust,
    bodyLimit: get("body-limit") ?? "1mb",
    heartbeatMs: num("heartbeat", 0.05) * 1000,
    sseReauthorizeMs: num("sse-reauthorize", 0.05) * 1000,
    sseMaxStreams: num("sse-max-streams", 1),
    eventHistory: num("event-history", 1),
    clientBufferBytes: num("client-buffer", 1024),
    kubeQps: num("kube-qps", 1),
    kubeBurst: num("kube-burst", 1),
    logLevel: get("log-level") ?? "info",
    signingKey: {
      namespace: get("namespace") ?? "default",
      secret: get("signing-key-secret") ?? "",
      publicKeysConfigMap: get("public-keys-configmap") ?? "",
      rotateEveryMs,
      graceMs,
    },
    admission: {
      policy: {
        allowedRegistries: (get("allowed-registries") ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        allowLatest: bool("allow-latest"),
        largeFleetReplicas: num("large-fleet-replicas", 1),
      },
      checkSecretRefs: bool("check-secret-refs"),
    },
    consoleDir: get("console-dir") ?? "",
    podAddressMap: get("pod-address-map"),
    maxUploadBytes: num("max-upload-bytes", 1),
    maxExecSeconds: num("max-exec-seconds", 1),
    wakeWaitMs: parseDuration("wake-wait", get("wake-wait") ?? ""),
    shutdownDelayMs: parseDuration("shutdown-delay", get("shutdown-delay") ?? ""),
    shutdownGraceMs: parseDuration("shutdown-grace", get("shutdown-grace") ?? ""),
  };
}
