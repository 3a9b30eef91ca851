// Errors that become RFC 9457 problem+json answers. Anything thrown that is not a
// ProblemError is answered as a plain 500 without details (never a stack trace).
import type { Problem } from "./api.ts";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
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

/** The errno code of a Node system error, if it is one. */
export function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}
