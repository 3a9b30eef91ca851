// The agentry gateway's TypeScript client: openapi-fetch typed by the types openapi-typescript
// generates from the committed openapi.json (schema.ts, `make gen`), plus what a document
// cannot give: bearer authentication, problem+json errors as exceptions, the kinds' names
// and printer columns (kinds.ts), the Server-Sent Events of a watch (watch.ts) and the
// records of a streamed exec or task (records.ts).
import createFetchClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.ts";

export type { components, paths } from "./schema.ts";
export { KINDS, type KindInfo, type PrinterColumn } from "./kinds.ts";
export { watch, type WatchEvent, type WatchOptions } from "./watch.ts";
export { NDJSON, records, type ExecRecord, type TaskRecord } from "./records.ts";

type Schemas = components["schemas"];
export type AgentRuntime = Schemas["AgentRuntime"];
export type AgentRuntimeInput = Schemas["AgentRuntimeInput"];
export type Pipeline = Schemas["Pipeline"];
export type PipelineInput = Schemas["PipelineInput"];
export type SandboxFleet = Schemas["SandboxFleet"];
export type SandboxFleetInput = Schemas["SandboxFleetInput"];
export type Workspace = Schemas["Workspace"];
export type WorkspaceInput = Schemas["WorkspaceInput"];
export type Problem = Schemas["Problem"];
export type AgentryClient = Client<paths>;

export interface ClientOptions {
  /** The gateway, e.g. http://localhost:8080. */
  baseUrl: string;
  /** Bearer token (a static gateway token or a Kubernetes token). */
  token?: string | undefined;
  headers?: Record<string, string>;
  fetch?: typeof globalThis.fetch;
}

/** A typed client of every route in openapi.json: `client.GET("/v1/namespaces/{namespace}/workspaces", ...)`. */
export function createClient(options: ClientOptions): AgentryClient {
  return createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

/** A gateway error answer (RFC 9457 problem details) as an exception. */
export class ProblemError extends Error {
  readonly status: number;
  readonly problem: Partial<Problem>;
  constructor(status: number, problem: Partial<Problem>) {
    const fields = (problem.errors ?? []).map((e) => `${e.path}: ${e.message}`).join("; ");
    super(
      `${problem.title ?? `HTTP ${status}`}${problem.detail ? `: ${problem.detail}` : ""}${fields && !problem.detail?.includes(fields) ? ` (${fields})` : ""}`,
    );
    this.name = "ProblemError";
    this.status = status;
    this.problem = problem;
  }
}

/** The data of a call, or a ProblemError carrying the gateway's problem details. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    const p = (
      typeof result.error === "object" && result.error !== null ? result.error : {}
    ) as Partial<Problem>;
    throw new ProblemError(result.response.status, p);
  }
  return result.data as T;
}
