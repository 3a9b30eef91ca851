// Operator settings from flags (or AGENTRY_* environment variables), with defaults that
// suit a production install; `--help` prints them.
import { formatDuration } from "../lib/cli/duration.ts";
import { defineFlags, logLevelFlag, type Warn } from "../lib/cli/flags.ts";
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

const flags = defineFlags("operator", {
  namespaces: {
    kind: "list",
    env: "AGENTRY_WATCH_NAMESPACES",
    help: "comma-separated namespaces to watch (default: all)",
  },
  "controller-id": {
    kind: "string",
    env: "AGENTRY_CONTROLLER_ID",
    help: "value of agentry.dev/controller-id on managed objects",
    default: "agentry",
  },
  "leader-elect": {
    kind: "bool",
    env: "AGENTRY_LEADER_ELECT",
    help: "elect one active replica with a Lease",
    default: true,
  },
  "lease-namespace": {
    kind: "string",
    env: "POD_NAMESPACE",
    help: "namespace of the leader Lease",
    default: "default",
  },
  "lease-name": {
    kind: "string",
    env: "AGENTRY_LEASE_NAME",
    help: "name of the leader Lease",
    default: "agentry-operator",
  },
  "lease-duration": {
    kind: "duration",
    env: "AGENTRY_LEASE_DURATION",
    help: "how long a lease is valid",
    default: "15s",
  },
  "renew-deadline": {
    kind: "duration",
    env: "AGENTRY_RENEW_DEADLINE",
    help: "how long the leader may fail to renew before stepping down",
    default: "10s",
  },
  "retry-period": {
    kind: "duration",
    env: "AGENTRY_RETRY_PERIOD",
    help: "time between lease attempts",
    default: "2s",
    min: "100ms",
  },
  "health-addr": {
    kind: "addr",
    env: "AGENTRY_HEALTH_ADDR",
    help: "host:port of /healthz /readyz /metrics",
    default: "0.0.0.0:8081",
  },
  "kube-qps": {
    kind: "number",
    env: "AGENTRY_KUBE_QPS",
    help: "client requests per second to the apiserver",
    default: 400,
    min: 1,
  },
  "kube-burst": {
    kind: "int",
    env: "AGENTRY_KUBE_BURST",
    help: "client request burst",
    default: 800,
    min: 1,
  },
  workers: {
    kind: "int",
    env: "AGENTRY_WORKERS",
    help: "concurrent reconciles per controller",
    default: 8,
    min: 1,
  },
  "resync-period": {
    kind: "duration",
    env: "AGENTRY_RESYNC_PERIOD",
    help: "time between full resyncs (orphan sweep)",
    default: "10m",
  },
  "gateway-namespace": {
    kind: "string",
    env: "AGENTRY_GATEWAY_NAMESPACE",
    help: "namespace of the agentry gateway (NetworkPolicy ingress); default: lease namespace",
  },
  "pod-address-map": {
    kind: "string",
    env: "AGENTRY_POD_ADDRESS_MAP",
    help: 'LOCAL CONTROL PLANE ONLY: JSON file {"ns/pod": "127.0.0.1:port"}, the only source of pod addresses (unlisted pods are never dialled)',
  },
  "signing-key-secret": {
    kind: "string",
    env: "AGENTRY_SIGNING_KEY_SECRET",
    help: "Secret in the lease namespace holding the key that signs data-plane tokens (created if missing)",
    default: "agentry-operator-signing-key",
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
    help: "how long a replaced key stays trusted; at least the longest token lifetime (15m), at most the rotation",
    default: "1h",
    min: "0s",
  },
  "gateway-public-keys": {
    kind: "string",
    env: "AGENTRY_GATEWAY_PUBLIC_KEYS",
    help: "ConfigMap in the gateway namespace where the gateway publishes its public keys (trusted by pods)",
    default: "agentry-gateway-public-keys",
  },
  "stall-after": {
    kind: "duration",
    env: "AGENTRY_STALL_AFTER",
    help: "how long an object may wait on someone else (a missing reference, no node for its Pod) before its Stalled condition says so",
    default: "5m",
  },
  "dispatcher-image": {
    kind: "string",
    env: "AGENTRY_DISPATCHER_IMAGE",
    help: "image of the job container that runs a pipeline's agentRef steps",
    default: "ghcr.io/agentry-dev/agent:0.1.0",
  },
  "log-level": logLevelFlag,
  "broker-addr": {
    kind: "addr",
    env: "AGENTRY_BROKER_ADDR",
    help: "host:port of the store broker sandboxes ask for pre-signed URLs",
    default: "0.0.0.0:8082",
  },
  "broker-url": {
    kind: "string",
    env: "AGENTRY_BROKER_URL",
    help: "URL sandboxes reach the store broker at (default http://agentry-operator.<lease namespace>.svc:<broker port>)",
  },
  "default-store-endpoint": {
    kind: "string",
    env: "AGENTRY_DEFAULT_STORE_ENDPOINT",
    help: "S3-compatible endpoint of the default object store (fleets without spec.objectStore); unset: none",
  },
  "default-store-bucket": {
    kind: "string",
    env: "AGENTRY_DEFAULT_STORE_BUCKET",
    help: "bucket of the default store",
  },
  "default-store-prefix": {
    kind: "string",
    env: "AGENTRY_DEFAULT_STORE_PREFIX",
    help: "key prefix in the default store's bucket",
  },
  "default-store-region": {
    kind: "string",
    env: "AGENTRY_DEFAULT_STORE_REGION",
    help: "region the default store's requests are signed for",
    default: "us-east-1",
  },
  "default-store-secret": {
    kind: "string",
    env: "AGENTRY_DEFAULT_STORE_SECRET",
    help: "Secret in the lease namespace with the default store's accessKeyId and secretAccessKey",
  },
});

export const usage = flags.usage;

export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  warn?: Warn,
): OperatorConfig | "help" {
  const v = flags.parse(argv, env, warn);
  if (v === "help") return "help";
  const healthAddr = v["health-addr"];
  const brokerAddr = v["broker-addr"];
  const leaseNamespace = v["lease-namespace"];
  const rotation = v["signing-key-rotation"];
  const grace = v["signing-key-grace"];
  if (grace > rotation)
    throw new Error(
      `--signing-key-grace (${formatDuration(grace)}) must not be longer than --signing-key-rotation (${formatDuration(rotation)}): a key is trusted at most until the next rotation replaces it`,
    );
  const endpoint = v["default-store-endpoint"];
  let defaultStore: DefaultStore | undefined;
  if (endpoint) {
    if (!/^https?:\/\/[^\s/?#]+\/?$/.test(endpoint))
      throw new Error(`--default-store-endpoint must be http(s)://host[:port], got "${endpoint}"`);
    const bucket = v["default-store-bucket"];
    const secret = v["default-store-secret"];
    if (!bucket || !secret)
      throw new Error("--default-store-endpoint needs --default-store-bucket and --default-store-secret");
    const prefix = v["default-store-prefix"];
    defaultStore = {
      endpoint,
      bucket,
      ...(prefix ? { prefix } : {}),
      region: v["default-store-region"],
      secretNamespace: leaseNamespace,
      secretName: secret,
    };
  }
  return {
    brokerAddr,
    brokerUrl: v["broker-url"] || `http://agentry-operator.${leaseNamespace}.svc:${brokerAddr.port}`,
    defaultStore,
    namespaces: v.namespaces.length ? v.namespaces : undefined,
    controllerId: v["controller-id"],
    leaderElect: v["leader-elect"],
    leaseNamespace,
    leaseName: v["lease-name"],
    leaseDurationMs: v["lease-duration"],
    renewDeadlineMs: v["renew-deadline"],
    retryPeriodMs: v["retry-period"],
    healthAddr,
    kubeQps: v["kube-qps"],
    kubeBurst: v["kube-burst"],
    workers: v.workers,
    resyncPeriodMs: v["resync-period"],
    gatewayNamespace: v["gateway-namespace"] || leaseNamespace,
    dispatcherImage: v["dispatcher-image"],
    logLevel: v["log-level"],
    podAddressMap: v["pod-address-map"] || undefined,
    signingKeySecret: v["signing-key-secret"],
    signingKeyRotationMs: rotation,
    signingKeyGraceMs: grace,
    gatewayPublicKeys: v["gateway-public-keys"],
    stallAfterMs: v["stall-after"],
  };
}
