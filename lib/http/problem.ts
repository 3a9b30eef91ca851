// Errors that become RFC 9457 problem+json answers on node:http (the sandbox and agent
// runtimes). Anything thrown that is not a ProblemError is answered as a plain 500 without
// details (never a stack trace).
import type { IncomingMessage, ServerResponse } from "node:http";
import { PROBLEM_CONTENT_TYPE, type Problem } from "../../contracts/problem.ts";
import type { Log } from "../log.ts";
import { errorMessage } from "../log.ts";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export class ProblemError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.name = "ProblemError";
    this.status = status;
    this.headers = headers;
  }

  toProblem(): Problem {
    return problem(this.status, this.message);
  }
}

export function problem(status: number, detail: string): Problem {
  return { type: "about:blank", title: TITLES[status] ?? "Error", status, detail };
}

export const badRequest = (detail: string) => new ProblemError(400, detail);
export const notFound = (detail: string) => new ProblemError(404, detail);
export const conflict = (detail: string) => new ProblemError(409, detail);

export function methodNotAllowed(allowed: string[]): ProblemError {
  return new ProblemError(405, `method not allowed; use ${allowed.join(", ")}`, {
    allow: allowed.join(", "),
  });
}

/**
 * Answers a failed request: a ProblemError with its status, detail and headers, anything
 * else as a 500 naming only where to look (`program`'s log, where the error is written).
 * A request whose body was not read closes its connection; an answer already under way
 * is cut off.
 */
export function sendProblem(
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  log: Log,
  program: string,
): void {
  const known = err instanceof ProblemError;
  if (!known)
    log.error("request failed", {
      path: req.url,
      error: errorMessage(err),
    });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(known ? err.status : 500, {
    "content-type": PROBLEM_CONTENT_TYPE,
    ...(known ? err.headers : {}),
    // An unread request body is not worth draining: close the connection instead.
    ...(req.complete ? {} : { connection: "close" }),
  });
  res.end(JSON.stringify(known ? err.toProblem() : problem(500, `internal error; see the ${program} log`)));
}

/** The errno code of a Node system error, if it is one. */
export function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}
