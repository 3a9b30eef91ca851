// The store broker: how a sandbox reaches its workspaces' objects without holding the
// store's credentials (ADR 6). The operator serves it; the sandbox runtime calls it.
//
//   POST /v1/store/presign   PresignRequest → PresignAnswer
//
// The caller authenticates with its pod's bound ServiceAccount token for the audience
// STORE_BROKER_AUDIENCE (a projected volume the operator puts in every sandbox pod, at
// STORE_TOKEN_PATH). The operator checks it with a TokenReview, finds the pod (one its
// fleet's Deployment made, with the token's uid), and signs only keys under the prefix of a
// workspace whose placement record (Workspace status.sandboxPod) names that pod. Keys in the
// request are relative to the workspace's prefix; the answer's URLs are short-lived.
// 401: no or a refused token; 403: the pod may not open that workspace (the detail says
// why); 404: the workspace is unknown; 409: the workspace's fleet has no store.
import { z } from "zod";
import { WORKSPACE_ID } from "./sandbox.ts";

/** The audience of the ServiceAccount token a sandbox sends to the broker. */
export const STORE_BROKER_AUDIENCE = "agentry-operator";

/** Path of the broker's one route. */
export const STORE_PRESIGN_PATH = "/v1/store/presign";

/** Where the projected ServiceAccount token is mounted in a sandbox pod. */
export const STORE_TOKEN_DIR = "/var/run/secrets/agentry.dev/store";
export const STORE_TOKEN_PATH = `${STORE_TOKEN_DIR}/token`;

/** Settings the operator gives sandbox pods of a fleet with a store. */
export const StoreEnv = {
  /** Base URL of the operator's broker; unset: no store, workspaces are not durable. */
  BROKER_URL: "AGENTRY_SANDBOX_STORE_BROKER",
  /** File holding the pod's ServiceAccount token for the broker (re-read on every call). */
  TOKEN_FILE: "AGENTRY_SANDBOX_STORE_TOKEN_FILE",
} as const;

export const PresignOp = z.enum(["get", "put", "head", "delete", "list"]);
export type PresignOp = z.output<typeof PresignOp>;

/** Most objects one request may ask for. */
export const MAX_PRESIGN_OBJECTS = 1000;

const relativeKey = z
  .string()
  .max(900)
  .refine(
    (k) => k === "" || (!k.startsWith("/") && !k.split("/").some((s) => s === "." || s === "..")),
    "must be relative to the workspace, without . or .. segments",
  );

export const PresignRequest = z.object({
  /** The workspace id (`<namespace>.<name>`). */
  workspace: z.string().regex(WORKSPACE_ID),
  objects: z
    .array(
      z.object({
        op: PresignOp,
        /** A key relative to the workspace; for `list`, a prefix ("" lists everything). */
        key: relativeKey,
        /** For `list`: the continuation token of the previous page. */
        continuationToken: z.string().max(1024).optional(),
      }),
    )
    .min(1)
    .max(MAX_PRESIGN_OBJECTS),
});
export type PresignRequest = z.output<typeof PresignRequest>;

export const PresignAnswer = z.object({
  /** RFC 3339 time the URLs stop working. */
  expiresAt: z.string(),
  /**
   * What a `list` answer's keys start with (the workspace's full prefix and a "/"): strip it
   * to get relative keys.
   */
  keyPrefix: z.string(),
  /** One per requested object, in order. */
  urls: z.array(z.object({ method: z.enum(["GET", "PUT", "HEAD", "DELETE"]), url: z.string() })),
});
export type PresignAnswer = z.output<typeof PresignAnswer>;
