// The data-plane token: what the operator (or the gateway) puts in `Authorization: Bearer`
// when it calls a sandbox or an agent. A compact JWS signed with Ed25519 (alg EdDSA), short
// lived, naming one audience and the scopes it opens. Sandboxes and agents hold only the
// public keys; nothing inside them can mint a token.
import { z } from "zod";

/** Issuers whose keys the runtimes trust. */
export const TokenIssuer = z.enum(["agentry-operator", "agentry-gateway"]);
export type TokenIssuer = z.infer<typeof TokenIssuer>;

/**
 * What a token opens:
 * - status: a sandbox's load and health (GET /status); an agent's /readyz details
 * - placement: create or remove a workspace on a sandbox (PUT/DELETE /workspaces/{id})
 * - drain: stop placing on a sandbox, or resume (POST /drain, /undrain)
 * - files: read and write a workspace's files
 * - exec: run commands in a workspace
 * - tasks: send tasks to an agent
 */
export const TokenScope = z.enum(["status", "placement", "drain", "files", "exec", "tasks"]);
export type TokenScope = z.infer<typeof TokenScope>;

/** One pod, one workspace (namespace.name, the sandbox's workspace id) or one agent. */
export const Audience = {
  pod: (namespace: string, name: string) => `pod:${namespace}/${name}`,
  workspace: (id: string) => `workspace:${id}`,
  agent: (namespace: string, name: string) => `agent:${namespace}/${name}`,
} as const;

export const TokenClaims = z.object({
  iss: TokenIssuer,
  aud: z.string().regex(/^(pod|workspace|agent):[a-z0-9./-]{1,300}$/),
  scope: z.array(TokenScope).min(1),
  /** Who asked (the gateway's caller), for the runtime's log. */
  sub: z.string().max(256).optional(),
  iat: z.number().int(),
  exp: z.number().int(),
});
export type TokenClaims = z.infer<typeof TokenClaims>;

/** Default and largest lifetime of a token, in seconds. */
export const TOKEN_TTL_SECONDS = 300;
export const MAX_TOKEN_TTL_SECONDS = 900;

/** Where the runtimes find the trusted public keys (one PEM file per key) in their pods. */
export const TRUST_DIR_ENV = "AGENTRY_TRUST_DIR";
export const DEFAULT_TRUST_DIR = "/var/run/agentry/trust";

/**
 * Who a sandbox or agent pod is, from the downward API (fieldRef metadata.name and
 * metadata.namespace): the runtime accepts tokens for `Audience.pod(namespace, name)`.
 */
export const PodIdentityEnv = {
  NAME: "AGENTRY_POD_NAME",
  NAMESPACE: "AGENTRY_POD_NAMESPACE",
} as const;

/**
 * Where tokens a pod sends (not receives) are mounted, one file per token, re-read before
 * every call: the operator refreshes them well before they expire.
 */
export const TOKENS_MOUNT_DIR = "/var/run/agentry/tokens";

/** What a route needs: a token for one of `audiences` that allows `scope`. */
export interface Access {
  audiences: string[];
  scope: TokenScope;
}
