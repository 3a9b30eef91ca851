// Operator settings from flags (or AGENTRY_* environment variables), with defaults that
// suit a production install; `--help` prints them.
import { parseArgs } from "node:util";
import { parseDuration } from "../lib/cli/duration.ts";
import type { DefaultStore } from "./broker/stores.ts";

export interface OperatorConfig {
  namespaces: string[] | undefined;
  controllerId: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  healthAddr: { host: string; port: number };
  kubeQps: number;
  kubeBurst: number;
  workers: number;
  resyncPeriodMs: number;
  gatewayNamespace: string;
  dispatcherImage: string;
  logLevel: string;
  podAddressMap: string | undefined;
  /** The Secret (in the lease namespace) holding the operator's signing key ring. */
  signingKeySecret: string;
  signingKeyRotationMs: number;
  signingKeyGraceMs: number;
  /** The ConfigMap (in the gateway namespace) where the gateway publishes its public keys. */
  gatewayPublicKeys: string;
  /** Where the store broker listens, and the URL sandboxes reach it at. */
  brokerAddr: { host: string; port: number };
  brokerUrl: string;
  /** The install's default object store, for fleets without spec.objectStore. */
  defaultStore: DefaultStore | undefined;
  /** How long a wait on someone else (a missing reference, no node) lasts before Stalled=True. */
  stallAfterMs: number;
}

const options = {
  namespaces: {
    type: "string",
    env: "AGENTRY_WATCH_NAMESPACES",
    help: "comma-separated namespaces to watch (default: all)",
  },
  "controller-id": {
    type: "string",
    env: "AGENTRY_CONTROLLER_ID",
    help: "value of agentry.dev/controller-id on managed objects",
    default: "agentry",
  },
  "leader-elect": {
    type: "string",
    env: "AGENTRY_LEADER_ELECT",
    help: "true|false: elect one active replica with a Lease",
    default: "true",
  },
  "lease-namespace": {
    type: "string",
    env: "POD_NAMESPACE",
    help: "namespace of the leader Lease",
    default: "default",
  },
  "lease-name": {
    type: "string",
    env: "AGENTRY_LEASE_NAME",
    help: "name of the leader Lease",
    default: "agentry-operator",
  },
  "lease-duration": {
    type: "string",
    env: "AGENTRY_LEASE_DURATION",
    help: "seconds a lease is valid",
    default: "15",
  },
  "renew-deadline": {
    type: "string",
    env: "AGENTRY_RENEW_DEADLINE",
    help: "seconds the leader may fail to renew before stepping down",
    default: "10",
  },
  "retry-period": {
    type: "string",
    env: "AGENTRY_RETRY_PERIOD",
    help: "seconds between lease attempts",
    default: "2",
  },
  "health-addr": {
    type: "string",
    env: "AGENTRY_HEALTH_ADDR",
    help: "host:port of /healthz /readyz /metrics",
    default: "0.0.0.0:8081",
  },
  "kube-qps": {
    type: "string",
    env: "AGENTRY_KUBE_QPS",
    help: "client requests per second to the apiserver",
    default: "200",
  },
  "kube-burst": { type: "string", env: "AGENTRY_KUBE_BURST", help: "client request burst", default: "400" },
  workers: {
    type: "string",
    env: "AGENTRY_WORKERS",
    help: "concurrent reconciles per controller",
    default: "4",
  },
  "resync-period": {
    type: "string",
    env: "AGENTRY_RESYNC_PERIOD",
    help: "seconds between full resyncs (orphan sweep)",
    default: "600",
  },
  "gateway-namespace": {
    type: "string",
    env: "AGENTRY_GATEWAY_NAMESPACE",
    help: "namespace of the agentry gateway (NetworkPolicy ingress); default: lease namespace",
  },
  "pod-address-map": {
    type: "string",
    env: "AGENTRY_POD_ADDRESS_MAP",
    help: 'LOCAL CONTROL PLANE ONLY: JSON file {"ns/pod": "127.0.0.1:port"}, the only source of pod addresses (unlisted pods are never dialled)',
  },
  "signing-key-secret": {
    type: "string",
    env: "AGENTRY_SIGNING_KEY_SECRET",
    help: "Secret in the lease namespace holding the key that signs data-plane tokens (created if missing)",
    default: "agentry-operator-signing-key",
  },
  "signing-key-rotation": {
    type: "string",
    env: "AGENTRY_SIGNING_KEY_ROTATION",
    help: "how long a signing key signs before the next one takes over (a duration)",
    default: "24h",
  },
  "signing-key-grace": {
    type: "string",
    env: "AGENTRY_SIGNING_KEY_GRACE",
    help: "how long a replaced key stays trusted; at least the longest token lifetime (15m), at most the rotation",
    default: "1h",
  },
  "gateway-public-keys": {
    type: "string",
    env: "AGENTRY_GATEWAY_PUBLIC_KEYS",
    help: "ConfigMap in the gateway namespace where the gateway publishes its public keys (trusted by pods)",
    default: "agentry-gateway-public-keys",
  },
  "stall-after": {
    type: "string",
    env: "AGENTRY_STALL_AFTER",
    help: "how long an object may wait on someone else (a missing reference, no node for its Pod) before its Stalled condition says so (a duration)",
    default: "5m",
  },
  "dispatcher-image": {
    type: "string",
    env: "AGENTRY_DISPATCHER_IMAGE",
    help: "image of the job container that runs a pipeline's agentRef steps",
    default: "ghcr.io/agentry-dev/agent:0.1.0",
  },
  "log-level": { type: "string", env: "AGENTRY_LOG_LEVEL", help: "error|warn|info|debug", default: "info" },
  "broker-addr": {
    type: "string",
    env: "AGENTRY_BROKER_ADDR",
    help: "host:port of the store broker sandboxes ask for pre-signed URLs",
    default: "0.0.0.0:8082",
  },
  "broker-url": {
    type: "string",
    env: "AGENTRY_BROKER_URL",
    help: "URL sandboxes reach the store broker at (default http://agentry-operator.<lease namespace>.svc:<broker port>)",
  },
  "default-store-endpoint": {
    type: "string",
    env: "AGENTRY_DEFAULT_STORE_ENDPOINT",
    help: "S3-compatible endpoint of the default object store (fleets without spec.objectStore); unset: none",
  },
  "default-store-bucket": {
    type: "string",
    env: "AGENTRY_DEFAULT_STORE_BUCKET",
    help: "bucket of the default store",
  },
  "default-store-prefix": {
    type: "string",
    env: "AGENTRY_DEFAULT_STORE_PREFIX",
    help: "key prefix in the default store's bucket",
  },
  "default-store-region": {
    type: "string",
    env: "AGENTRY_DEFAULT_STORE_REGION",
    help: "region the default store's requests are signed for",
    default: "us-east-1",
  },
  "default-store-secret": {
    type: "string",
    env: "AGENTRY_DEFAULT_STORE_SECRET",
    help: "Secret in the lease namespace with the default store's accessKeyId and secretAccessKey",
  },
  help: { type: "boolean", help: "print this help" },
} as const;

export function usage(): string {
  const lines = Object.entries(options).map(([name, o]) => {
    const env = "env" in o ? ` (${o.env})` : "";
    const def = "default" in o ? ` [${o.default}]` : "";
    return `  --${name.padEnd(18)} ${o.help}${env}${def}`;
  });
  return `agentry operator\n\nOptions:\n${lines.join("\n")}\n`;
}

function num(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig | "help" {
  const parsed = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type }])),
    strict: true,
  }).values as Record<string, string | boolean | undefined>;
  if (parsed.help) return "help";
  const get = (name: keyof typeof options): string => {
    const o = options[name];
    const v = parsed[name];
    if (typeof v === "string") return v;
    if ("env" in o && env[o.env]) return env[o.env]!;
    return "default" in o ? o.default : "";
  };
  const [host, portText] = get("health-addr").split(/:(?=[^:]*$)/);
  const leaseNamespace = get("lease-namespace");
  const namespaces = get("namespaces")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const duration = (name: keyof typeof options) => {
    const ms = parseDuration(name, get(name));
    if (ms <= 0 && name !== "signing-key-grace") throw new Error(`--${name} must be longer than 0`);
    return ms;
  };
  const rotation = duration("signing-key-rotation");
  const grace = duration("signing-key-grace");
  if (grace > rotation)
    throw new Error(
      `--signing-key-grace (${get("signing-key-grace")}) must not be longer than --signing-key-rotation (${get("signing-key-rotation")}): a key is trusted at most until the next rotation replaces it`,
    );
  const bool = (name: keyof typeof options) => {
    const v = get(name).toLowerCase();
    if (v !== "true" && v !== "false") throw new Error(`--${name} must be true or false, got "${v}"`);
    return v === "true";
  };
  const [brokerHost, brokerPortText] = get("broker-addr").split(/:(?=[^:]*$)/);
  const brokerPort = num("broker-addr port", brokerPortText ?? "", 0);
  const endpoint = get("default-store-endpoint");
  let defaultStore: DefaultStore | undefined;
  if (endpoint) {
    if (!/^https?:\/\/[^\s/?#]+\/?$/.test(endpoint))
      throw new Error(`--default-store-endpoint must be http(s)://host[:port], got "${endpoint}"`);
    const bucket = get("default-store-bucket");
    const secret = get("default-store-secret");
    if (!bucket || !secret)
      throw new Error("--default-store-endpoint needs --default-store-bucket and --default-store-secret");
    const prefix = get("default-store-prefix");
    defaultStore = {
      endpoint,
      bucket,
      ...(prefix ? { prefix } : {}),
      region: get("default-store-region"),
      secretNamespace: leaseNamespace,
      secretName: secret,
    };
  }
  return {
    brokerAddr: { host: brokerHost || "0.0.0.0", port: brokerPort },
    brokerUrl: get("broker-url") || `http://agentry-operator.${leaseNamespace}.svc:${brokerPort}`,
    defaultStore,
    namespaces: namespaces.length ? namespaces : undefined,
    controllerId: get("controller-id"),
    leaderElect: bool("leader-elect"),
    leaseNamespace,
    leaseName: get("lease-name"),
    leaseDurationMs: num("lease-duration", get("lease-duration"), 1) * 1000,
    renewDeadlineMs: num("renew-deadline", get("renew-deadline"), 1) * 1000,
    retryPeriodMs: num("retry-period", get("retry-period"), 0.1) * 1000,
    healthAddr: { host: host || "0.0.0.0", port: num("health-addr port", portText ?? "", 0) },
    kubeQps: num("kube-qps", get("kube-qps"), 1),
    kubeBurst: num("kube-burst", get("kube-burst"), 1),
    workers: num("workers", get("workers"), 1),
    resyncPeriodMs: num("resync-period", get("resync-period"), 1) * 1000,
    gatewayNamespace: get("gateway-namespace") || leaseNamespace,
    dispatcherImage: get("dispatcher-image"),
    logLevel: get("log-level"),
    podAddressMap: get("pod-address-map") || undefined,
    signingKeySecret: get("signing-key-secret"),
    signingKeyRotationMs: rotation,
    signingKeyGraceMs: grace,
    gatewayPublicKeys: get("gateway-public-keys"),
    stallAfterMs: duration("stall-after"),
  };
}
