// Webhook settings from flags (or AGENTRY_* environment variables); `--help` prints them.
import { parseArgs } from "node:util";
import type { Policy } from "../lib/admission/index.ts";
import { parseDuration } from "../lib/cli/duration.ts";

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface WebhookConfig {
  listen: { host: string; port: number };
  certDir: string | undefined;
  certSecret: { namespace: string; name: string };
  certHosts: string[];
  certValidityMs: number;
  certRotateBeforeMs: number;
  service: { namespace: string; name: string; port: number };
  webhookUrl: string | undefined;
  manageConfigurations: boolean;
  validatingConfigName: string;
  mutatingConfigName: string;
  failurePolicy: "Fail" | "Ignore";
  timeoutSeconds: number;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  policy: Policy;
  lookupTimeoutMs: number;
  /** Check that referenced Secrets (and keys) exist; needs `get` on Secrets in every admitted namespace. */
  checkSecretRefs: boolean;
  /** PEM file of the CA of the apiserver's client certificate: only such callers get reviews. */
  clientCaFile: string | undefined;
  /** Names (CN or DNS) the client certificate must carry; empty: any the CA signed. */
  clientCertNames: string[];
  logLevel: string;
}

interface Flag {
  env?: string;
  help: string;
  default?: string;
}

const options = {
  listen: { env: "AGENTRY_WEBHOOK_LISTEN", help: "host:port of the HTTPS server", default: "0.0.0.0:9443" },
  "cert-dir": {
    env: "AGENTRY_WEBHOOK_CERT_DIR",
    help: "serve tls.crt/tls.key from this directory (cert-manager), reloaded on change; unset: self-managed CA",
  },
  namespace: { env: "POD_NAMESPACE", help: "the webhook's own namespace", default: "agentry-system" },
  "cert-secret-name": {
    env: "AGENTRY_WEBHOOK_CERT_SECRET",
    help: "Secret (in --namespace) holding the self-managed CA and certificate",
    default: "agentry-webhook-tls",
  },
  "cert-hosts": { help: "extra DNS names or IPs of the serving certificate (comma-separated)" },
  "cert-validity": { help: "validity of the self-managed CA and certificate (e.g. 8760h)", default: "8760h" },
  "cert-rotate-before": {
    help: "rotate when the certificate expires within this (e.g. 720h)",
    default: "720h",
  },
  "service-name": {
    env: "AGENTRY_WEBHOOK_SERVICE",
    help: "Service in front of the webhook",
    default: "agentry-webhook",
  },
  "service-port": { help: "port of that Service", default: "443" },
  "webhook-url": { help: "call the webhook at this https URL instead of the Service (e.g. out-of-cluster)" },
  "manage-configurations": {
    help: "true|false: create the webhook configurations and keep their caBundle current",
    default: "true",
  },
  "validating-config-name": { help: "ValidatingWebhookConfiguration name", default: "agentry-validating" },
  "mutating-config-name": { help: "MutatingWebhookConfiguration name", default: "agentry-defaulting" },
  "failure-policy": { help: "Fail|Ignore when the webhook cannot be reached", default: "Fail" },
  "timeout-seconds": { help: "how long the apiserver waits for an answer (1-30)", default: "5" },
  "namespace-selector": {
    help: "JSON LabelSelector of the namespaces admitted; default: all but kube-system and --namespace",
  },
  "object-selector": { help: "JSON LabelSelector of the objects admitted", default: "{}" },
  "allowed-registries": {
    env: "AGENTRY_ALLOWED_REGISTRIES",
    help: "registries (or registry/path prefixes) images may come from, comma-separated; empty: any",
  },
  "allow-latest": {
    env: "AGENTRY_ALLOW_LATEST",
    help: "true|false: allow :latest and untagged images",
    default: "false",
  },
  "large-fleet-replicas": { help: "warn when a SandboxFleet's maxReplicas exceeds this", default: "100" },
  "lookup-timeout": {
    help: "time limit of the reads a check makes (keep below timeout-seconds)",
    default: "3s",
  },
  "check-secret-refs": {
    env: "AGENTRY_CHECK_SECRET_REFS",
    help: "true|false: deny references to missing Secrets or keys (needs get on Secrets in the admitted namespaces)",
    default: "true",
  },
  "client-ca-file": {
    env: "AGENTRY_WEBHOOK_CLIENT_CA_FILE",
    help: "PEM CA of the client certificate the apiserver presents (AdmissionConfiguration kubeConfigFile); set: reviews only for such callers",
  },
  "client-cert-names": {
    help: "names (CN or DNS SAN) the client certificate must carry, comma-separated; empty: any the CA signed",
  },
  "log-level": { env: "AGENTRY_LOG_LEVEL", help: "error|warn|info|debug", default: "info" },
} satisfies Record<string, Flag>;

type Name = keyof typeof options;

export function usage(): string {
  const lines = Object.entries(options as Record<string, Flag>).map(([name, o]) => {
    const env = o.env ? ` (${o.env})` : "";
    const def = o.default !== undefined ? ` [${o.default}]` : "";
    return `  --${name.padEnd(24)} ${o.help}${env}${def}`;
  });
  return `agentry webhook\n\nOptions:\n${lines.join("\n")}\n  --help                     print this help\n`;
}

function selector(flag: string, text: string): LabelSelector {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (err) {
    throw new Error(
      `--${flag} must be a JSON LabelSelector such as {"matchLabels":{"team":"a"}}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): WebhookConfig | "help" {
  const parsed = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(options).map((k) => [k, { type: "string" }])),
      help: { type: "boolean" },
    },
    strict: true,
  }).values as Record<string, string | boolean | undefined>;
  if (parsed.help) return "help";
  const get = (name: Name): string => {
    const o: Flag = options[name];
    const v = parsed[name];
    if (typeof v === "string") return v;
    if (o.env && env[o.env]) return env[o.env]!;
    return o.default ?? "";
  };
  const list = (name: Name) =>
    get(name)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const bool = (name: Name) => {
    const v = get(name).toLowerCase();
    if (v !== "true" && v !== "false") throw new Error(`--${name} must be true or false, got "${v}"`);
    return v === "true";
  };
  const int = (name: Name, min: number, max: number) => {
    const n = Number(get(name));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer in [${min}, ${max}], got "${get(name)}"`);
    return n;
  };
  const [host, portText] = get("listen").split(/:(?=[^:]*$)/);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--listen must be host:port, got "${get("listen")}"`);
  const failurePolicy = get("failure-policy");
  if (failurePolicy !== "Fail" && failurePolicy !== "Ignore")
    throw new Error(`--failure-policy must be Fail or Ignore, got "${failurePolicy}"`);
  const namespace = get("namespace");
  const service = { namespace, name: get("service-name"), port: int("service-port", 1, 65535) };
  const webhookUrl = get("webhook-url") || undefined;
  if (webhookUrl && !webhookUrl.startsWith("https://"))
    throw new Error(`--webhook-url must start with https://, got "${webhookUrl}"`);
  const timeoutSeconds = int("timeout-seconds", 1, 30);
  const certValidityMs = parseDuration("cert-validity", get("cert-validity"));
  const certRotateBeforeMs = parseDuration("cert-rotate-before", get("cert-rotate-before"));
  if (certRotateBeforeMs >= certValidityMs)
    throw new Error("--cert-rotate-before must be shorter than --cert-validity");
  const svcHosts = [
    service.name,
    `${service.name}.${namespace}`,
    `${service.name}.${namespace}.svc`,
    `${service.name}.${namespace}.svc.cluster.local`,
  ];
  const defaultNamespaces: LabelSelector = {
    matchExpressions: [
      { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", namespace] },
    ],
  };
  return {
    listen: { host: host || "0.0.0.0", port },
    certDir: get("cert-dir") || undefined,
    certSecret: { namespace, name: get("cert-secret-name") },
    certHosts: [...new Set([...svcHosts, ...list("cert-hosts")])],
    certValidityMs,
    certRotateBeforeMs,
    service,
    webhookUrl,
    manageConfigurations: bool("manage-configurations"),
    validatingConfigName: get("validating-config-name"),
    mutatingConfigName: get("mutating-config-name"),
    failurePolicy,
    timeoutSeconds,
    namespaceSelector: get("namespace-selector")
      ? selector("namespace-selector", get("namespace-selector"))
      : defaultNamespaces,
    objectSelector: selector("object-selector", get("object-selector")),
    policy: {
      allowedRegistries: list("allowed-registries"),
      allowLatest: bool("allow-latest"),
      largeFleetReplicas: int("large-fleet-replicas", 1, 100000),
    },
    lookupTimeoutMs: parseDuration("lookup-timeout", get("lookup-timeout")),
    checkSecretRefs: bool("check-secret-refs"),
    clientCaFile: get("client-ca-file") || undefined,
    clientCertNames: list("client-cert-names"),
    logLevel: get("log-level"),
  };
}
