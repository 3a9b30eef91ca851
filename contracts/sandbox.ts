// The sandbox runtime's HTTP API (runtimes/sandbox), the contract between it and its
// clients: the operator (status, drain, workspaces), the agent runtime (files, exec) and the
// typed client beside this file. Request bodies are the schemas the server validates with;
// answers are typed by the schemas of what it sends. Errors are problems (problem.ts).
//
//   GET  /healthz, /readyz                     200 "ok"; /readyz 503 "draining" while draining
//   GET  /status                               SandboxStatus
//   POST /drain, /undrain                      DrainAnswer
//   PUT  /debug/load                           LoadOverride → SandboxStatus (--allow-load-override only)
//   GET  /workspaces                           WorkspaceList
//   GET|PUT|DELETE /workspaces/{id}            WorkspaceInfo (PUT: CreateWorkspaceRequest; 201 new, 200 existing)
//                                              DELETE ?flush=true: flush to the store first; 202 while
//                                              the flush runs (ask again), then 200 with the
//                                              WorkspaceInfo of its last flush once removed (204
//                                              when it was not there)
//   POST /workspaces/{id}/exec                 ExecRequest → ExecResult, or with
//                                              `Accept: application/x-ndjson` a stream of
//                                              ExecStreamRecord lines (closing it cancels)
//   GET|PUT|DELETE /workspaces/{id}/files/{path}   raw bytes (PUT: 201 new, 204 replaced);
//                                              GET honours one `Range: bytes=a-b` (206, 416)
//   GET  /workspaces/{id}/dir[/{path}]         DirListing of a directory (default: the workspace)
//   GET  /workspaces/{id}/archive[/{path}]     the directory as a tar stream (application/x-tar)
//
// Every route but /healthz and /readyz needs `Authorization: Bearer <token>` (tokens.ts):
// a token for the sandbox's pod with scope status (GET /status, GET /workspaces), drain
// (/drain, /undrain, /debug/load) or placement (PUT, DELETE /workspaces/{id}); a workspace's
// own routes also take a token for that workspace, scope files (its files, GET
// /workspaces/{id}) or exec. 401 without a valid token, 403 when it does not open the route.
import { z } from "zod";

/** Settings the operator gives every sandbox pod (the sandbox reads them, flags win). */
export const SandboxEnv = {
  /** host:port to serve on. */
  LISTEN: "AGENTRY_SANDBOX_LISTEN",
  /** Directory holding the workspaces. */
  ROOT: "AGENTRY_SANDBOX_ROOT",
  /** Workspaces one sandbox holds at most (SandboxFleet spec.maxWorkspacesPerSandbox). */
  MAX_WORKSPACES: "AGENTRY_SANDBOX_MAX_WORKSPACES",
  /** host:port of /metrics (contracts/metrics.ts). */
  METRICS_ADDR: "AGENTRY_SANDBOX_METRICS_ADDR",
} as const;

/** Probe paths, open without a token. */
export const SandboxPath = { healthz: "/healthz", readyz: "/readyz" } as const;

/** Workspace ids: DNS-subdomain-like; the operator uses "<namespace>.<name>". */
export const WORKSPACE_ID = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The id of Workspace `name` in `namespace` on its sandbox: unique across namespaces. */
export function workspaceIdOf(namespace: string, name: string): string {
  return `${namespace}.${name}`;
}

/** The path of a workspace on its sandbox; files and exec live below it. */
export function workspacePath(id: string): string {
  return `/workspaces/${encodeURIComponent(id)}`;
}

/**
 * The URL of a workspace on its sandbox, `http://<host>:<port>/workspaces/<id>`: what a
 * Workspace's status.endpoint says and what an agent gets as AGENTRY_WORKSPACE_URL.
 */
export function workspaceUrl(sandboxBaseUrl: string, id: string): string {
  return `${sandboxBaseUrl}${workspacePath(id)}`;
}

/** The sandbox's base URL and the workspace id of a workspaceUrl; undefined when it is not one. */
export function parseWorkspaceUrl(url: string): { baseUrl: string; id: string } | undefined {
  const match = /^(https?:\/\/[^/\s]+(?:\/[^\s]*?)?)\/workspaces\/([^/\s]+)\/?$/.exec(url);
  return match ? { baseUrl: match[1]!, id: decodeURIComponent(match[2]!) } : undefined;
}

/** Longest path, and longest name in a path, a workspace accepts (bytes). */
export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

/**
 * Why `path` is not a valid path relative to a workspace, or undefined when it is: no NUL,
 * not absolute, no "..", "." or empty segments, within the length limits. The sandbox
 * refuses such paths with 400, and so does the gateway before it calls a sandbox.
 */
export function relativePathProblem(path: string, what: string): string | undefined {
  if (path.includes("\0")) return `${what} must not contain a NUL byte`;
  if (path === "") return `${what} is empty`;
  if (path.startsWith("/")) return `${what} must be relative to the workspace, got an absolute path`;
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `${what} is longer than ${MAX_PATH_BYTES} bytes`;
  for (const s of path.split("/")) {
    if (s === "..") return `${what} must not contain ".." segments`;
    if (s === "" || s === ".") return `${what} must not contain empty or "." segments`;
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES)
      return `${what}: name "${s.slice(0, 32)}..." is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/** A load fraction, 0..1. */
const fraction = z.number().min(0).max(1);

/** GET /status */
export const SandboxStatus = z.object({
  /** Fraction of the CPU limit in use, 0..1. */
  cpu: fraction,
  /** Fraction of the memory limit in use, 0..1. */
  memory: fraction,
  workspaces: z.number().int().nonnegative(),
  draining: z.boolean(),
  maxWorkspaces: z.number().int().positive(),
  /**
   * Workspaces this sandbox does not hold that callers with a token for them asked for in
   * the last two minutes: most likely suspended for idleness from here. The operator wakes
   * those that sleep (placing them back here where they fit).
   */
  wakeRequests: z.array(z.string()).optional(),
});
export type SandboxStatus = z.output<typeof SandboxStatus>;

/** POST /drain and /undrain answer. */
export const DrainAnswer = z.object({ draining: z.boolean() });
export type DrainAnswer = z.output<typeof DrainAnswer>;

/** PUT /debug/load body (only with --allow-load-override): pins the reported load; null clears. */
export const LoadOverride = z.object({
  cpu: fraction.nullable().optional(),
  memory: fraction.nullable().optional(),
});
export type LoadOverride = z.output<typeof LoadOverride>;

/**
 * Where a workspace's files stand against its object store. phase: restoring (its files are
 * coming in from the store or git; files and exec answer 503 meanwhile), ready, failed (the
 * restore or clone failed: reason and message say why; retried with backoff).
 */
export const Durability = z.object({
  phase: z.enum(["restoring", "ready", "failed"]),
  /** A store is configured and the files are in it as of lastFlushTime. */
  durable: z.boolean(),
  /** Files changed since the last completed flush (or it failed). */
  dirty: z.boolean(),
  /** Short machine-readable reason of a failure (e.g. CloneFailed, RefNotFound, RestoreFailed, FlushFailed). */
  reason: z.string().optional(),
  message: z.string().optional(),
  lastFlushTime: z.string().optional(),
  bytes: z.number().int().nonnegative().optional(),
  /** The commit the git source was cloned at (the first placement only). */
  sourceCommit: z.string().optional(),
  origin: z.enum(["restored", "cloned", "empty", "local"]).optional(),
});
export type Durability = z.output<typeof Durability>;

/** A workspace as the API reports it. */
export const WorkspaceInfo = z.object({
  id: z.string().regex(WORKSPACE_ID),
  ownerId: z.string().nullable(),
  /** RFC 3339 time the workspace was created. */
  createdAt: z.string(),
  /**
   * RFC 3339 time of the workspace's last data-plane call (files, dir, archive, exec), the
   * time of the answer while a command runs, and createdAt before any call: what a
   * Workspace's spec.idleTimeout is measured from.
   */
  lastActivityTime: z.string().optional(),
  durability: Durability.optional(),
});
export type WorkspaceInfo = z.output<typeof WorkspaceInfo>;

/** GET /workspaces answer. */
export const WorkspaceList = z.object({ items: z.array(WorkspaceInfo) });
export type WorkspaceList = z.output<typeof WorkspaceList>;

/**
 * PUT /workspaces/{id} body (may be empty): who owns the workspace, if anyone, and where its
 * first files come from when the store has nothing of it yet (a git repository, with the
 * credentials of its Secret: kept in memory only, never logged or answered).
 */
export const CreateWorkspaceRequest = z.object({
  ownerId: z.string().min(1).max(253).nullable().optional(),
  source: z
    .object({
      git: z.object({
        url: z.string().min(1).max(2048),
        ref: z.string().min(1).max(256).optional(),
        credentials: z
          .object({
            username: z.string().max(1024).optional(),
            password: z.string().max(8192).optional(),
            token: z.string().max(8192).optional(),
          })
          .optional(),
      }),
    })
    .optional(),
});
export type CreateWorkspaceRequest = z.output<typeof CreateWorkspaceRequest>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** No NUL byte (execve cannot pass one): a pattern, so the OpenAPI document says it too. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what the pattern keeps out
const NO_NUL = /^[^\u0000]*$/;
const MUST_NAME_A_PROGRAM = 'must name a program: an argv array such as ["ls", "-l"]';
const noNulString = () => z.string().regex(NO_NUL, "must not contain NUL bytes");

/**
 * POST /workspaces/{id}/exec body. The server also caps timeoutSeconds at its
 * --max-exec (which is the default too).
 */
export const ExecRequest = z.object({
  /** argv; run directly, never through a shell. */
  command: z.tuple(
    [
      z
        .string({ error: MUST_NAME_A_PROGRAM })
        .min(1, MUST_NAME_A_PROGRAM)
        .regex(NO_NUL, "must not contain NUL bytes"),
    ],
    noNulString(),
  ),
  timeoutSeconds: z.number().positive().optional(),
  /**
   * Working directory relative to the workspace (default: the workspace itself). It must
   * exist and, after symlinks, lie inside the workspace.
   */
  cwd: noNulString().min(1).max(4096).optional(),
  /** Variables on top of the minimal PATH, HOME and LANG; nothing else is inherited. */
  env: z
    .record(z.string().regex(ENV_NAME, "environment variable names are letters, digits and _"), noNulString())
    .optional(),
  stdin: z.string().optional(),
});
export type ExecRequest = z.output<typeof ExecRequest>;

/** POST /workspaces/{id}/exec answer. */
export const ExecResult = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  timedOut: z.boolean(),
  truncated: z.boolean(),
  durationMs: z.number(),
});
export type ExecResult = z.output<typeof ExecResult>;

/** The media type that asks POST /workspaces/{id}/exec for a stream (send it in Accept). */
export const EXEC_STREAM_MEDIA_TYPE = "application/x-ndjson";

/**
 * Request header naming a command (a UUID the caller chose) so that
 * `DELETE /workspaces/{id}/exec/{execId}` can cancel it from any connection: the gateway's
 * replicas share no memory, the sandbox that runs the command is the one place that knows it.
 */
export const EXEC_ID_HEADER = "x-exec-id";
export const EXEC_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** DELETE /workspaces/{id}/exec/{execId}: 202 when a running command was told to stop. */
export const ExecCancelAnswer = z.object({ execId: z.string(), cancelled: z.literal(true) });
export type ExecCancelAnswer = z.infer<typeof ExecCancelAnswer>;

/**
 * One line of a streamed exec answer. Output comes as it is produced (UTF-8 text; each
 * stream capped like the JSON answer); the last line is `exit`, or `error` when the sandbox
 * failed after the stream began. Closing the connection kills the command.
 */
export const ExecStreamRecord = z.discriminatedUnion("type", [
  z.object({ type: z.literal("stdout"), data: z.string() }),
  z.object({ type: z.literal("stderr"), data: z.string() }),
  ExecResult.omit({ stdout: true, stderr: true }).extend({ type: z.literal("exit") }),
  z.object({ type: z.literal("error"), detail: z.string() }),
]);
export type ExecStreamRecord = z.output<typeof ExecStreamRecord>;

/** One entry of a directory listing. Symbolic links are reported, never followed. */
export const DirEntry = z.object({
  name: z.string(),
  type: z.enum(["file", "dir", "symlink", "other"]),
  /** Bytes, for regular files (0 otherwise). */
  size: z.number().int().nonnegative(),
  /** Permission bits, e.g. 0o644 = 420. */
  mode: z.number().int().nonnegative(),
  /** RFC 3339. */
  modifiedAt: z.string(),
});
export type DirEntry = z.output<typeof DirEntry>;

/** GET /workspaces/{id}/dir[/{path}] answer: the directory's entries, sorted by name. */
export const DirListing = z.object({
  /** The directory, relative to the workspace ("" for the workspace itself). */
  path: z.string(),
  entries: z.array(DirEntry),
  /** True when the directory has more entries than one listing returns. */
  truncated: z.boolean(),
});
export type DirListing = z.output<typeof DirListing>;

/** The media type of GET /workspaces/{id}/archive. */
export const TAR_MEDIA_TYPE = "application/x-tar";
