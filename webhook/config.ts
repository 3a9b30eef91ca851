// Webhook settings from flags (or AGENTRY_* environment variables); `--help` prints them.
import type { Policy } from "../lib/admission/index.ts";
import { formatDuration } from "../lib/cli/duration.ts";
import { defineFlags, logLevelFlag, type Warn } from "../lib/cli/flags.ts";

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

const flags = defineFlags("webhook", {
  listen: {
    kind: "addr",
    env: "AGENTRY_WEBHOOK_LISTEN",
    help: "host:port of the HTTPS server",
    default: "0.0.0.0:9443",
  },
  "cert-dir": {
    kind: "string",
    env: "AGENTRY_WEBHOOK_CERT_DIR",
    help: "serve tls.crt/tls.key from this directory (cert-manager), reloaded on change; unset: self-managed CA",
  },
  namespace: {
    kind: "string",
    env: "POD_NAMESPACE",
    help: "the webhook's own namespace",
    default: "agentry-system",
  },
  "cert-secret-name": {
    kind: "string",
    env: "AGENTRY_WEBHOOK_CERT_SECRET",
    help: "Secret (in --namespace) holding the self-managed CA and certificate",
    default: "agentry-webhook-tls",
  },
  "cert-hosts": { kind: "list", help: "extra DNS names or IPs of the serving certificate (comma-separated)" },
  "cert-validity": {
    kind: "duration",
    help: "validity of the self-managed CA and certificate",
    default: "8760h",
  },
  "cert-rotate-before": {
    kind: "duration",
    help: "rotate when the certificate expires within this",
    default: "720h",
  },
  "service-name": {
    kind: "string",
    env: "AGENTRY_WEBHOOK_SERVICE",
    help: "Service in front of the webhook",
    default: "agentry-webhook",
  },
  "service-port": { kind: "int", help: "port of that Service", default: 443, min: 1, max: 65535 },
  "webhook-url": {
    kind: "string",
    help: "call the webhook at this https URL instead of the Service (e.g. out-of-cluster)",
  },
  "manage-configurations": {
    kind: "bool",
    help: "create the webhook configurations and keep their caBundle current",
    default: true,
  },
  "validating-config-name": {
    kind: "string",
    help: "ValidatingWebhookConfiguration name",
    default: "agentry-validating",
  },
  "mutating-config-name": {
    kind: "string",
    help: "MutatingWebhookConfiguration name",
    default: "agentry-defaulting",
  },
  "failure-policy": {
    kind: "string",
    help: "what the apiserver does when the webhook cannot be reached",
    choices: ["Fail", "Ignore"],
    default: "Fail",
  },
  timeout: {
    kind: "duration",
    help: "how long the apiserver waits for an answer (whole seconds, 1s-30s)",
    default: "5s",
    min: "1s",
    max: "30s",
    deprecated: [{ flag: "timeout-seconds", unit: "s" }],
  },
  "namespace-selector": {
    kind: "string",
    help: "JSON LabelSelector of the namespaces admitted; default: all but kube-system and --namespace",
  },
  "object-selector": { kind: "string", help: "JSON LabelSelector of the objects admitted", default: "{}" },
  "allowed-registries": {
    kind: "list",
    env: "AGENTRY_ALLOWED_REGISTRIES",
    help: "registries (or registry/path prefixes) images may come from, comma-separated; empty: any",
  },
  "allow-latest": {
    kind: "bool",
    env: "AGENTRY_ALLOW_LATEST",
    help: "allow :latest and untagged images",
    default: false,
  },
  "large-fleet-replicas": {
    kind: "int",
    help: "warn when a SandboxFleet's maxReplicas exceeds this",
    default: 100,
    min: 1,
    max: 100000,
  },
  "lookup-timeout": {
    kind: "duration",
    help: "time limit of the reads a check makes (keep below --timeout)",
    default: "3s",
  },
  "check-secret-refs": {
    kind: "bool",
    env: "AGENTRY_CHECK_SECRET_REFS",
    help: "deny references to missing Secrets or keys (needs get on Secrets in the admitted namespaces)",
    default: true,
  },
  "client-ca-file": {
    kind: "string",
    env: "AGENTRY_WEBHOOK_CLIENT_CA_FILE",
    help: "PEM CA of the client certificate the apiserver presents (AdmissionConfiguration kubeConfigFile); set: reviews only for such callers",
  },
  "client-cert-names": {
    kind: "list",
    help: "names (CN or DNS SAN) the client certificate must carry, comma-separated; empty: any the CA signed",
  },
  "log-level": logLevelFlag,
});

export const usage = flags.usage;

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

export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  warn?: Warn,
): WebhookConfig | "help" {
  const v = flags.parse(argv, env, warn);
  if (v === "help") return "help";
  const failurePolicy = v["failure-policy"] as WebhookConfig["failurePolicy"];
  const namespace = v.namespace;
  const service = { namespace, name: v["service-name"], port: v["service-port"] };
  const webhookUrl = v["webhook-url"] || undefined;
  if (webhookUrl && !webhookUrl.startsWith("https://"))
    throw new Error(`--webhook-url must start with https://, got "${webhookUrl}"`);
  if (v.timeout % 1000 !== 0)
    throw new Error(`--timeout must be whole seconds, got ${formatDuration(v.timeout)}`);
  const certValidityMs = v["cert-validity"];
  const certRotateBeforeMs = v["cert-rotate-before"];
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
  const namespaceSelector = v["namespace-selector"];
  return {
    listen: v.listen,
    certDir: v["cert-dir"] || undefined,
    certSecret: { namespace, name: v["cert-secret-name"] },
    certHosts: [...new Set([...svcHosts, ...v["cert-hosts"]])],
    certValidityMs,
    certRotateBeforeMs,
    service,
    webhookUrl,
    manageConfigurations: v["manage-configurations"],
    validatingConfigName: v["validating-config-name"],
    mutatingConfigName: v["mutating-config-name"],
    failurePolicy,
    timeoutSeconds: v.timeout / 1000,
    namespaceSelector: namespaceSelector
      ? selector("namespace-selector", namespaceSelector)
      : defaultNamespaces,
    objectSelector: selector("object-selector", v["object-selector"]),
    policy: {
      allowedRegistries: v["allowed-registries"],
      allowLatest: v["allow-latest"],
      largeFleetReplicas: v["large-fleet-replicas"],
    },
    lookupTimeoutMs: v["lookup-timeout"],
    checkSecretRefs: v["check-secret-refs"],
    clientCaFile: v["client-ca-file"] || undefined,
    clientCertNames: v["client-cert-names"],
    logLevel: v["log-level"],
  };
}
