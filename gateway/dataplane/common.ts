// What the data-plane routes share: their dependencies, the audit record every call leaves
// (like a write: a pending record before the pod is called, the outcome after; no database,
// no call), the mapping of a sandbox's or agent's answer to a problem, query parameters, and
// streaming a body to the client with backpressure, stopped when the client goes away.
import type { Request, Response } from "express";
import type { z } from "zod";
import { relativePathProblem } from "../../contracts/sandbox.ts";
import { SandboxApiError } from "../../contracts/sandbox.client.ts";
import { writeChunk } from "../../lib/http/body.ts";
import type { KubeClient } from "../../lib/kube/client.ts";
import type { PodAddresses } from "../../lib/kube/podaddresses.ts";
import type { Logger } from "../../lib/log.ts";
import type { TokenSigner } from "../../lib/tokens.ts";
import type { AccessQuestion, AccessReview } from "../auth/access.ts";
import { requireAccess } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import { problemOf, toProblem } from "../problem.ts";
import type { Store } from "../store/store.ts";

export interface DataPlaneOptions {
  /** Where pods listen: the pod IP, or only the loopback processes of a map file. */
  addresses: PodAddresses;
  /** The gateway's current signing key. */
  signer: () => TokenSigner | undefined;
  /** Largest file upload, in bytes (default 64 MiB). */
  maxUploadBytes?: number;
  /** Longest command a caller may ask for, in seconds (default 600). */
  maxExecSeconds?: number;
  /** How long a request waits for a workspace suspended for idleness to wake (default 30 s). */
  wakeWaitMs?: number;
}

export interface DataPlaneDeps extends DataPlaneOptions {
  /** The gateway's own client, for the objects behind a route (after the caller's review). */
  kube: KubeClient;
  store: Store;
  log: Logger;
  review: AccessReview;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 64 << 20;
export const DEFAULT_MAX_EXEC_SECONDS = 600;

export const identityOf = (res: Response): Identity => res.locals.identity as Identity;

export const params = (req: Request) =>
  req.params as { namespace: string; name: string; [k: string]: string };

/** The caller's SubjectAccessReview for the route; 403 naming the verb when refused. */
export function allow(deps: DataPlaneDeps, res: Response, q: AccessQuestion): Promise<void> {
  return requireAccess(deps.review, identityOf(res), q);
}

export interface AuditTarget {
  /** e.g. "files.read", "exec", "tasks.create", "logs". */
  verb: string;
  kind: string;
  namespace: string;
  name: string;
}

/**
 * Runs a data-plane call with its audit record: pending before `work` (a database that
 * cannot take it refuses the call with 503), then the answer's status, and "failed" with a
 * reason when the call failed or the client went away before the answer was complete.
 * `note` adds a line to the record's detail (a path, a program, an exit code).
 */
export async function audited(
  deps: Pick<DataPlaneDeps, "store" | "log">,
  req: Request,
  res: Response,
  target: AuditTarget,
  work: (note: (detail: string) => void) => Promise<void>,
): Promise<void> {
  const who = identityOf(res);
  let auditId: string;
  try {
    auditId = await deps.store.beginAudit({
      requestId: res.locals.requestId as string,
      actor: who.user,
      groups: who.groups,
      ...target,
    });
  } catch (err) {
    deps.log.error("the audit record could not be written; the call is refused", { error: String(err) });
    throw problemOf(
      503,
      "the audit log is unavailable, so the gateway makes no data-plane calls; retry later",
      {
        headers: { "retry-after": "5" },
      },
    );
  }
  const notes: string[] = [];
  const note = (d: string) => void notes.push(d);
  // Queued: written off the response path (the pending record is in already).
  const finish = (outcome: "succeeded" | "failed", status: number, why?: string) =>
    deps.store.finishAudit(
      auditId,
      outcome,
      status,
      [...notes, ...(why ? [why] : [])].join("; ").slice(0, 2000) || undefined,
    );
  try {
    await work(note);
  } catch (err) {
    const p = toProblem(err);
    finish("failed", res.headersSent ? res.statusCode : p.status, p.init.detail);
    throw err;
  }
  // An ended answer may still be on its way out: its outcome is known once it finished or broke.
  if (res.writableEnded && !res.writableFinished && !res.destroyed)
    await new Promise<void>((resolve) => {
      res.once("finish", resolve);
      res.once("close", resolve);
    });
  const complete = res.writableFinished;
  finish(
    complete && res.statusCode < 400 ? "succeeded" : "failed",
    res.statusCode,
    complete ? undefined : "the client went away before the answer was complete",
  );
  void req;
}

/** A sandbox's (or agent's) error answer as the gateway's problem: 4xx kept, the rest 502. */
export function fromPod(err: unknown, what: string): unknown {
  if (!(err instanceof SandboxApiError)) return err;
  if (err.status === 0) return problemOf(502, `the ${what} could not be reached: ${err.message}`);
  const detail = err.problem?.detail ?? err.message;
  if (err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 403)
    return problemOf(err.status, detail, err.status === 429 ? { headers: { "retry-after": "1" } } : {});
  // 401/403 from a pod means it does not trust the gateway's key (yet): not the caller's fault.
  return problemOf(502, `the ${what} refused the call (${err.status}): ${detail}`);
}

/** A query parameter given at most once. */
export function queryOne(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw problemOf(400, `query parameter ${name} must be given once`);
  return v;
}

/** The `path` query parameter, checked as the sandbox checks it; `optional` allows none (""). */
export function filePath(req: Request, optional: boolean): string {
  const path = queryOne(req, "path");
  if (path === undefined || path === "") {
    if (optional) return "";
    throw problemOf(400, "query parameter path is required: a file path relative to the workspace");
  }
  const problem = relativePathProblem(path, "path");
  if (problem) throw problemOf(400, problem);
  return path;
}

/** Aborted when the client goes away before the answer is complete. */
export function clientGone(res: Response): AbortSignal {
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort(new Error("the client went away"));
  });
  return gone.signal;
}

/** Writes `body` to the client as it comes, waiting when the client reads slowly. */
export async function pipeTo(body: AsyncIterable<Uint8Array>, res: Response): Promise<void> {
  for await (const chunk of body) {
    if (res.destroyed) return;
    await writeChunk(res, chunk);
  }
}

/** The body checked against `schema`: 400 naming each field that is wrong. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((i) => ({ path: i.path.join(".") || "body", message: i.message }));
  throw problemOf(400, errors.map((e) => `${e.path}: ${e.message}`).join("; "), { errors });
}

/** What a streaming route sends: NDJSON, SSE, or (undefined) one JSON answer. */
export type StreamFormat = "ndjson" | "sse" | undefined;

export function streamFormat(req: Request): StreamFormat {
  const accept = req.get("accept") ?? "";
  if (accept.includes("text/event-stream")) return "sse";
  if (accept.includes("application/x-ndjson")) return "ndjson";
  return undefined;
}

/** Starts a record stream and returns its writer: one JSON line, or one SSE event per record. */
export function recordStream<R extends { type: string }>(
  res: Response,
  format: "ndjson" | "sse",
): (record: R) => boolean {
  res.status(200);
  res.setHeader("content-type", format === "sse" ? "text/event-stream" : "application/x-ndjson");
  res.setHeader("cache-control", "no-store");
  res.setHeader("x-content-type-options", "nosniff");
  if (format === "sse") res.setHeader("x-accel-buffering", "no");
  res.flushHeaders();
  return (record) =>
    res.write(
      format === "sse"
        ? `event: ${record.type}\ndata: ${JSON.stringify(record)}\n\n`
        : `${JSON.stringify(record)}\n`,
    );
}
