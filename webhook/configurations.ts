// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration the webhook keeps in
// place (self-managed mode): which requests reach it, with which failurePolicy and timeout,
// and the caBundle the apiserver trusts. Written by server-side apply (field manager agentry).
import type { KubeClient, KubeObject } from "../lib/kube/client.ts";
import { isNotFound } from "../lib/kube/client.ts";
import type { LabelSelector, WebhookConfig } from "./config.ts";

const API = "admissionregistration.k8s.io/v1";
const PLURALS = ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"];

type Settings = Pick<
  WebhookConfig,
  | "validatingConfigName"
  | "mutatingConfigName"
  | "failurePolicy"
  | "timeoutSeconds"
  | "namespaceSelector"
  | "objectSelector"
  | "service"
  | "webhookUrl"
>;

interface Webhook {
  name: string;
  clientConfig: {
    url?: string;
    service?: { namespace: string; name: string; port: number; path: string };
    caBundle?: string;
  };
  rules: {
    apiGroups: string[];
    apiVersions: string[];
    resources: string[];
    operations: string[];
    scope: string;
  }[];
  failurePolicy: string;
  matchPolicy: "Equivalent";
  sideEffects: "None";
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  reinvocationPolicy?: "Never";
}

function webhook(
  s: Settings,
  name: string,
  path: string,
  resources: string[],
  operations: string[],
  caBundle?: string,
): Webhook {
  const clientConfig: Webhook["clientConfig"] = s.webhookUrl
    ? { url: `${s.webhookUrl.replace(/\/$/, "")}${path}` }
    : { service: { ...s.service, path } };
  if (caBundle) clientConfig.caBundle = Buffer.from(caBundle).toString("base64");
  return {
    name,
    clientConfig,
    rules: [
      { apiGroups: ["agentry.dev"], apiVersions: ["v1alpha1"], resources, operations, scope: "Namespaced" },
    ],
    failurePolicy: s.failurePolicy,
    matchPolicy: "Equivalent",
    sideEffects: "None",
    timeoutSeconds: s.timeoutSeconds,
    admissionReviewVersions: ["v1"],
    namespaceSelector: s.namespaceSelector,
    objectSelector: s.objectSelector,
  };
}

/**
 * The two configurations. Only the main resources are admitted (never /status or /scale,
 * so the operator's status writes never depend on the webhook), and DELETE only for
 * SandboxFleets (the one deletion rule).
 */
export function desiredConfigurations(s: Settings, caBundle?: string): KubeObject[] {
  const labels = { "app.kubernetes.io/name": "agentry-webhook", "app.kubernetes.io/managed-by": "agentry" };
  return [
    {
      apiVersion: API,
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: s.validatingConfigName, labels },
      webhooks: [
        webhook(s, "validate.agentry.dev", "/validate", PLURALS, ["CREATE", "UPDATE"], caBundle),
        webhook(s, "validate-delete.agentry.dev", "/validate", ["sandboxfleets"], ["DELETE"], caBundle),
      ],
    },
    {
      apiVersion: API,
      kind: "MutatingWebhookConfiguration",
      metadata: { name: s.mutatingConfigName, labels },
      webhooks: [
        {
          ...webhook(s, "default.agentry.dev", "/mutate", PLURALS, ["CREATE", "UPDATE"], caBundle),
          reinvocationPolicy: "Never",
        },
      ],
    },
  ];
}

/** True when every webhook of the live object already carries `caBundle`. */
function carries(live: KubeObject | undefined, caBundle: string): boolean {
  const hooks = (live?.webhooks ?? []) as Webhook[];
  const want = Buffer.from(caBundle).toString("base64");
  return hooks.length > 0 && hooks.every((h) => h.clientConfig.caBundle === want);
}

/**
 * Applies both configurations when `force` is set or their caBundle differs. Returns true
 * when they already carried this caBundle before the call (the apiserver trusts it).
 */
export async function ensureConfigurations(
  client: KubeClient,
  s: Settings,
  caBundle: string | undefined,
  force: boolean,
): Promise<boolean> {
  let trusted = true;
  for (const desired of desiredConfigurations(s, caBundle)) {
    const live = await client
      .get(desired.apiVersion, desired.kind, undefined, desired.metadata.name ?? "")
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
    const ok = caBundle === undefined ? live !== undefined : carries(live, caBundle);
    if (!ok) trusted = false;
    if (force || !ok) await client.apply(desired);
  }
  return trusted;
}
