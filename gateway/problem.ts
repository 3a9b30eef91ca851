// RFC 9457 problem details: every error the gateway answers is application/problem+json
// with a type, title, status, detail naming the cause, and the request id.
import type { Response } from "express";
import { ApiError } from "../lib/kube/client.ts";

export const PROBLEM_TYPE_BASE = "https://agentry.dev/problems/";

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemInit {
  status: number;
  /** Short slug appended to PROBLEM_TYPE_BASE, e.g. "not-found". */
  type: string;
  title: string;
  detail?: string;
  errors?: FieldError[];
  /** Extra members (RFC 9457 extensions). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An error that carries its problem document; thrown by handlers, answered by the error middleware. */
export class Problem extends Error {
  readonly init: ProblemInit;
  constructor(init: ProblemInit) {
    super(init.detail ?? init.title);
    this.name = "Problem";
    this.init = init;
  }
  get status(): number {
    return this.init.status;
  }
}

export function problemBody(
  init: ProblemInit,
  instance?: string,
  requestId?: string,
): Record<string, unknown> {
  return {
    type: PROBLEM_TYPE_BASE + init.type,
    title: init.title,
    status: init.status,
    ...(init.detail ? { detail: init.detail } : {}),
    ...(instance ? { instance } : {}),
    ...(requestId ? { requestId } : {}),
    ...(init.errors ? { errors: init.errors } : {}),
    ...init.extra,
  };
}

export function sendProblem(res: Response, init: ProblemInit): void {
  const requestId = res.getHeader("x-request-id");
  for (const [k, v] of Object.entries(init.headers ?? {})) res.setHeader(k, v);
  res
    .status(init.status)
    .type("application/problem+json")
    .send(
      JSON.stringify(
        problemBody(init, res.req.originalUrl, typeof requestId === "string" ? requestId : undefined),
      ),
    );
}

const TITLES: Record<number, [string, string]> = {
  400: ["bad-request", "Bad request"],
  401: ["unauthenticated", "Authentication required"],
  403: ["forbidden", "Forbidden"],
  404: ["not-found", "Not found"],
  405: ["method-not-allowed", "Method not allowed"],
  409: ["conflict", "Conflict"],
  410: ["gone", "Gone"],
  412: ["precondition-failed", "Precondition failed"],
  413: ["payload-too-large", "Payload too large"],
  415: ["unsupported-media-type", "Unsupported media type"],
  416: ["range-not-satisfiable", "Range not satisfiable"],
  422: ["invalid", "Invalid resource"],
  429: ["too-many-requests", "Too many requests"],
  500: ["internal", "Internal error"],
  501: ["not-implemented", "Not implemented"],
  502: ["bad-gateway", "Bad gateway"],
  503: ["unavailable", "Service unavailable"],
  504: ["timeout", "Gateway timeout"],
};

export function problemOf(status: number, detail: string, extra: Partial<ProblemInit> = {}): Problem {
  const [type, title] = TITLES[status] ?? ["error", "Error"];
  return new Problem({ status, type, title, detail, ...extra });
}

interface KubeStatusCause {
  field?: string;
  message?: string;
  reason?: string;
}

/**
 * Maps an apiserver error to a problem with the same status (404, 403, 409, 422 ... kept
 * faithfully); field causes become `errors`. Transport failures become 502/504.
 */
export function problemFromApiError(err: ApiError): Problem {
  if (err.status === 0) {
    const timeout = /timeout|aborted/i.test(err.message);
    return problemOf(timeout ? 504 : 502, `the Kubernetes API server could not be reached: ${err.message}`);
  }
  const body = err.body as { details?: { causes?: KubeStatusCause[] } } | undefined;
  const causes = body?.details?.causes ?? [];
  const errors = causes
    .filter((c) => c.message)
    .map((c) => ({ path: c.field ?? "", message: c.message ?? "" }));
  const status = err.status >= 500 ? 502 : err.status;
  return problemOf(status, err.message, {
    ...(errors.length ? { errors } : {}),
    extra: { reason: err.reason },
  });
}

/** A handler for the methods a path does not take: 405 with the Allow header. */
export const methodNotAllowed =
  (allow: string[]) =>
  (req: { method: string; originalUrl: string }): never => {
    throw problemOf(
      405,
      `${req.method} is not allowed on ${req.originalUrl.split("?")[0]}; allowed: ${allow.join(", ")}`,
      { headers: { allow: allow.join(", ") } },
    );
  };

/** Any thrown value → a problem (unknown errors are 500 without internals in the body). */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof ApiError) return problemFromApiError(err);
  const e = err as { status?: number; type?: string; message?: string };
  // body-parser errors carry status and type
  if (e?.type === "entity.too.large") return problemOf(413, "the request body exceeds the size limit");
  if (e?.type === "entity.parse.failed")
    return problemOf(400, `the request body is not valid JSON: ${e.message}`);
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500)
    return problemOf(e.status, e.message ?? "bad request");
  return problemOf(500, "an unexpected error happened; the request id identifies it in the gateway logs");
}
