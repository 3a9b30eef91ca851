// Pure pieces of data-plane trust in a tenant namespace:
// - the ConfigMap `agentry-trust`: the public keys sandbox and agent pods trust, mounted
//   read-only at AGENTRY_TRUST_DIR, with the pod's own identity from the downward API;
// - the Secret `agentry-tokens`: the tokens pods send (a Pipeline dispatcher to its agent,
//   an agent to its workspace), one key each, mounted item by item into only the pods that
//   need that token. Both have fixed names, so RBAC can name them (resourceNames).
import type { Pipeline } from "../../api/v1alpha1/index.ts";
import {
  Audience,
  DEFAULT_TRUST_DIR,
  PodIdentityEnv,
  TOKENS_MOUNT_DIR,
  TRUST_DIR_ENV,
  type TokenScope,
} from "../../contracts/tokens.ts";
import { withSpecHash } from "../../lib/kube/children.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { publicKeyFiles, type PublicKey } from "../../lib/keyring.ts";
import { shortHash } from "../../lib/kube/names.ts";
import { workspaceIdOf } from "../../contracts/sandbox.ts";

export const TRUST_CONFIGMAP = "agentry-trust";
export const TOKENS_SECRET = "agentry-tokens";
/** On the trust ConfigMap and the tokens Secret: which of the two it is. */
export const LABEL_TRUST = "agentry.dev/trust";
export const TRUST_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_TRUST}=bundle`;

/** Lifetime of a token kept in the tokens Secret (the most contracts/tokens.ts allows). */
export const STORED_TOKEN_TTL_SECONDS = 900;
/** The tokens Secret is rewritten this long after it was written: tokens in it then have 10 minutes left. */
export const STORED_TOKEN_REFRESH_MS = 300_000;

const labels = (kind: "bundle" | "tokens") => ({
  "app.kubernetes.io/managed-by": "agentry",
  "app.kubernetes.io/part-of": "agentry",
  [LABEL_TRUST]: kind,
});

/** The trust ConfigMap of `namespace` holding `keys`. */
export function desiredTrustBundle(namespace: string, keys: PublicKey[]): KubeObject {
  return withSpecHash({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: TRUST_CONFIGMAP, namespace, labels: labels("bundle") },
    data: publicKeyFiles(keys),
  });
}

/** The tokens Secret of `namespace` with `data` (key → token). */
export function desiredTokensSecret(namespace: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: TOKENS_SECRET, namespace, labels: labels("tokens") },
    type: "Opaque",
    stringData: data,
  };
}

/** Keys of the tokens Secret: `<kind>.<name>`, kept within the 253 characters a key may have. */
function tokenKey(kind: "agent" | "workspace", name: string): string {
  const key = `${kind}.${name}`;
  return key.length <= 253 ? key : `${kind}.${name.slice(0, 200)}.${shortHash(name)}`;
}
export const tokenKeys = {
  /** The tasks token of an AgentRuntime, for the Pipelines that name it. */
  agent: (agent: string) => tokenKey("agent", agent),
  /** The files and exec token of a Workspace, for the AgentRuntimes that work in it. */
  workspace: (workspace: string) => tokenKey("workspace", workspace),
};

export interface WantedToken {
  key: string;
  aud: string;
  scope: TokenScope[];
}

/**
 * The tokens pods of `namespace` need: a tasks token for each live AgentRuntime a live
 * Pipeline's step names (`agentExists`), a files+exec token for each Workspace a live
 * AgentRuntime works in (`workspaces`). Sorted by key.
 */
export function wantedTokens(
  namespace: string,
  pipelines: readonly Pipeline[],
  agentExists: (name: string) => boolean,
  workspaces: Iterable<string>,
): WantedToken[] {
  const wanted = new Map<string, WantedToken>();
  for (const pl of pipelines) {
    if (pl.metadata.deletionTimestamp) continue;
    for (const step of pl.spec.steps ?? []) {
      const agent = step.agentRef?.name;
      if (!agent || !agentExists(agent)) continue;
      const key = tokenKeys.agent(agent);
      wanted.set(key, { key, aud: Audience.agent(namespace, agent), scope: ["tasks"] });
    }
  }
  for (const ws of workspaces) {
    const key = tokenKeys.workspace(ws);
    wanted.set(key, { key, aud: Audience.workspace(workspaceIdOf(namespace, ws)), scope: ["files", "exec"] });
  }
  return [...wanted.values()].sort((a, b) => a.key.localeCompare(b.key));
}

/** What a sandbox or agent pod gets: the trust bundle mounted read-only, and who it is. */
export const trustForPods = {
  volume: { name: "agentry-trust", configMap: { name: TRUST_CONFIGMAP } },
  mount: { name: "agentry-trust", mountPath: DEFAULT_TRUST_DIR, readOnly: true },
  env: [
    { name: TRUST_DIR_ENV, value: DEFAULT_TRUST_DIR },
    { name: PodIdentityEnv.NAME, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: PodIdentityEnv.NAMESPACE, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  ],
};

/** Env names the operator sets for trust; a template's own env may not override them. */
export const TRUST_ENV_NAMES = new Set(trustForPods.env.map((e) => e.name));

/**
 * A volume with only the given keys of the tokens Secret, each as file `path`, mounted at
 * TOKENS_MOUNT_DIR: a pod sees the tokens it needs and no other.
 */
export function tokensVolume(items: { key: string; path: string }[]) {
  return {
    volume: { name: "agentry-tokens", secret: { secretName: TOKENS_SECRET, items } },
    mount: { name: "agentry-tokens", mountPath: TOKENS_MOUNT_DIR, readOnly: true },
  };
}

/** Where a token of the tokens volume is, in the pod. */
export const tokenFile = (path: string): string => `${TOKENS_MOUNT_DIR}/${path}`;
