// A small typed client for the sandbox runtime's HTTP API (sandbox.ts), used by the
// operator, the agent runtime and the tests. Error answers become SandboxApiError carrying
// the problem.
import type { Problem } from "./problem.ts";
import {
  EXEC_STREAM_MEDIA_TYPE,
  workspacePath,
  type CreateWorkspaceRequest,
  type DrainAnswer,
  type ExecRequest,
  type ExecResult,
  type ExecStreamRecord,
  type LoadOverride,
  type SandboxStatus,
  type WorkspaceInfo,
  type WorkspaceList,
} from "./sandbox.ts";

export interface SandboxClientOptions {
  /** e.g. "http://10.0.0.7:8080" */
  baseUrl: string;
  token?: string | undefined;
  /** Per-request timeout for everything but exec (default 10 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** An error answer from the sandbox (or a transport failure, status 0). */
export class SandboxApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;

  constructor(status: number, message: string, problem?: Problem) {
    super(message);
    this.name = "SandboxApiError";
    this.status = status;
    this.problem = problem;
  }
}

/** Extra time an exec request may take beyond the command's own timeout. */
const EXEC_SLACK_MS = 10_000;

export class SandboxClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: SandboxClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  /** GET /healthz: true when the process answers 200. */
  async healthy(): Promise<boolean> {
    return (await this.send("GET", "/healthz", { ok: [200, 503] })).status === 200;
  }

  /** GET /readyz: false while draining. */
  async ready(): Promise<boolean> {
    return (await this.send("GET", "/readyz", { ok: [200, 503] })).status === 200;
  }

  async status(): Promise<SandboxStatus> {
    return (await this.send("GET", "/status")).json() as Promise<SandboxStatus>;
  }

  async drain(): Promise<DrainAnswer> {
    return (await this.send("POST", "/drain")).json() as Promise<DrainAnswer>;
  }

  async undrain(): Promise<DrainAnswer> {
    return (await this.send("POST", "/undrain")).json() as Promise<DrainAnswer>;
  }

  /** PUT /debug/load (only served with --allow-load-override); returns the new status. */
  async overrideLoad(load: LoadOverride): Promise<SandboxStatus> {
    return (await this.send("PUT", "/debug/load", { json: load })).json() as Promise<SandboxStatus>;
  }

  /** Idempotent: `created` is false when the workspace already existed. */
  async createWorkspace(
    id: string,
    options: { ownerId?: string | undefined } = {},
  ): Promise<{ workspace: WorkspaceInfo; created: boolean }> {
    const body: CreateWorkspaceRequest = options.ownerId !== undefined ? { ownerId: options.ownerId } : {};
    const res = await this.send("PUT", workspacePath(id), { json: body });
    return { workspace: (await res.json()) as WorkspaceInfo, created: res.status === 201 };
  }

  async listWorkspaces(): Promise<WorkspaceInfo[]> {
    const res = await this.send("GET", "/workspaces");
    return ((await res.json()) as WorkspaceList).items;
  }

  /** undefined when the workspace does not exist. */
  async getWorkspace(id: string): Promise<WorkspaceInfo | undefined> {
    const res = await this.send("GET", workspacePath(id), { ok: [200, 404] });
    return res.status === 404 ? undefined : ((await res.json()) as WorkspaceInfo);
  }

  /** Idempotent: succeeds when the workspace is already gone. */
  async deleteWorkspace(id: string): Promise<void> {
    await this.send("DELETE", workspacePath(id));
  }

  /** Writes a file (parent directories are created); `created` is false when it replaced one. */
  async writeFile(id: string, path: string, data: string | Uint8Array): Promise<{ created: boolean }> {
    const res = await this.send("PUT", filePath(id, path), { body: data });
    return { created: res.status === 201 };
  }

  /** The file's bytes; throws SandboxApiError with status 404 when it does not exist. */
  async readFile(id: string, path: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.send("GET", filePath(id, path))).arrayBuffer());
  }

  async readTextFile(id: string, path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFile(id, path));
  }

  /** Idempotent: succeeds when the file is already gone. */
  async deleteFile(id: string, path: string): Promise<void> {
    await this.send("DELETE", filePath(id, path));
  }

  /** Runs argv in the workspace (no shell) and waits for it. */
  async exec(id: string, request: ExecRequest): Promise<ExecResult> {
    const timeoutMs = request.timeoutSeconds !== undefined ? request.timeoutSeconds * 1000 : 600_000;
    const res = await this.send("POST", `${workspacePath(id)}/exec`, {
      json: request,
      timeoutMs: timeoutMs + EXEC_SLACK_MS,
    });
    return (await res.json()) as ExecResult;
  }

  /**
   * Runs argv in the workspace and yields its output as it comes (stdout and stderr
   * records), then one `exit` record. Aborting `signal` (or leaving the loop early) closes
   * the connection, which kills the command.
   */
  async *execStream(
    id: string,
    request: ExecRequest,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<ExecStreamRecord> {
    const timeoutMs = request.timeoutSeconds !== undefined ? request.timeoutSeconds * 1000 : 600_000;
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const res = await this.send("POST", `${workspacePath(id)}/exec`, {
      json: request,
      accept: EXEC_STREAM_MEDIA_TYPE,
      timeoutMs: timeoutMs + EXEC_SLACK_MS,
      signal,
    });
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (line.trim()) yield JSON.parse(line) as ExecStreamRecord;
      }
      if (buffered.trim()) yield JSON.parse(buffered) as ExecStreamRecord;
    } finally {
      stop.abort();
    }
  }

  private async send(
    method: string,
    path: string,
    options: {
      json?: unknown;
      body?: string | Uint8Array;
      ok?: number[];
      timeoutMs?: number;
      accept?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.accept) headers.accept = options.accept;
    let body: string | Uint8Array | undefined = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (body !== undefined) headers["content-type"] = "application/octet-stream";
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: body as NonNullable<RequestInit["body"]> } : {}),
        signal: AbortSignal.any([
          AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs),
          ...(options.signal ? [options.signal] : []),
        ]),
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new SandboxApiError(0, `sandbox ${this.baseUrl}: ${method} ${path} failed: ${reason}`);
    }
    if ((options.ok ?? []).includes(res.status) || (res.status >= 200 && res.status < 300)) return res;
    const text = await res.text();
    let problem: Problem | undefined;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = undefined;
    }
    const detail = problem?.detail ?? text.slice(0, 200);
    throw new SandboxApiError(
      res.status,
      `sandbox ${this.baseUrl}: ${method} ${path}: ${res.status} ${detail}`,
      problem,
    );
  }
}

/**
 * Encodes each segment of a relative path. "." and ".." segments are refused here already:
 * fetch would otherwise resolve them away before the server could refuse them.
 */
function filePath(id: string, path: string): string {
  const segments = path.split("/");
  if (path.startsWith("/") || segments.some((s) => s === "" || s === "." || s === ".."))
    throw new SandboxApiError(
      400,
      `file path "${path}" must be relative, without empty, "." or ".." segments`,
    );
  return `${workspacePath(id)}/files/${segments.map(encodeURIComponent).join("/")}`;
}
