// A small typed client for the sandbox runtime's HTTP API (sandbox.ts), used by the
// operator, the agent runtime and the tests. Error answers become SandboxApiError carrying
// the problem. It never follows a redirect (a 3xx is an error: a sandbox has no reason to
// send one, and following it would carry the token elsewhere) and reads at most
// maxResponseBytes of an answer (maxFileBytes of a file).
import type { Problem } from "./problem.ts";
import {
  EXEC_ID_HEADER,
  EXEC_STREAM_MEDIA_TYPE,
  workspacePath,
  type CreateWorkspaceRequest,
  type DirListing,
  type DrainAnswer,
  type ExecRequest,
  type ExecResult,
  type ExecStreamRecord,
  type LoadOverride,
  type SandboxStatus,
  type WorkspaceInfo,
  type WorkspaceList,
} from "./sandbox.ts";

/** What releaseWorkspace found: still flushing, or gone (with its last state when it was there). */
export type Released = { state: "flushing" } | { state: "gone"; info?: WorkspaceInfo };

/** A bearer token, or where to get one for each call (a file re-read, a fresh signature). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

export interface SandboxClientOptions {
  /** e.g. "http://10.0.0.7:8080" */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` on every call but /healthz and /readyz. */
  token?: TokenSource | undefined;
  /** Per-request timeout for everything but exec (default 10 s). */
  timeoutMs?: number;
  /** Largest answer read, files aside (default 1 MiB); a longer one is an error. */
  maxResponseBytes?: number;
  /** Largest file readFile returns, and largest exec answer (default 64 MiB). */
  maxFileBytes?: number;
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
  private readonly token: TokenSource | undefined;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly maxFileBytes: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: SandboxClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 1 << 20;
    this.maxFileBytes = options.maxFileBytes ?? 64 << 20;
    this.fetchFn = options.fetch ?? fetch;
  }

  /** GET /healthz: true when the process answers 200. */
  async healthy(): Promise<boolean> {
    return (await this.send("GET", "/healthz", { ok: [200, 503], open: true })).status === 200;
  }

  /** GET /readyz: false while draining. */
  async ready(): Promise<boolean> {
    return (await this.send("GET", "/readyz", { ok: [200, 503], open: true })).status === 200;
  }

  async status(): Promise<SandboxStatus> {
    return (await this.send("GET", "/status")).json() as SandboxStatus;
  }

  async drain(): Promise<DrainAnswer> {
    return (await this.send("POST", "/drain")).json() as DrainAnswer;
  }

  async undrain(): Promise<DrainAnswer> {
    return (await this.send("POST", "/undrain")).json() as DrainAnswer;
  }

  /** PUT /debug/load (only served with --allow-load-override); returns the new status. */
  async overrideLoad(load: LoadOverride): Promise<SandboxStatus> {
    return (await this.send("PUT", "/debug/load", { json: load })).json() as SandboxStatus;
  }

  /** Idempotent: `created` is false when the workspace already existed. */
  async createWorkspace(
    id: string,
    options: { ownerId?: string | undefined; source?: CreateWorkspaceRequest["source"] } = {},
  ): Promise<{ workspace: WorkspaceInfo; created: boolean }> {
    const body: CreateWorkspaceRequest = {
      ...(options.ownerId !== undefined ? { ownerId: options.ownerId } : {}),
      ...(options.source ? { source: options.source } : {}),
    };
    const res = await this.send("PUT", workspacePath(id), { json: body });
    return { workspace: res.json() as WorkspaceInfo, created: res.status === 201 };
  }

  async listWorkspaces(): Promise<WorkspaceInfo[]> {
    const res = await this.send("GET", "/workspaces");
    return (res.json() as WorkspaceList).items;
  }

  /** undefined when the workspace does not exist. */
  async getWorkspace(id: string): Promise<WorkspaceInfo | undefined> {
    const res = await this.send("GET", workspacePath(id), { ok: [200, 404] });
    return res.status === 404 ? undefined : (res.json() as WorkspaceInfo);
  }

  /** Idempotent: succeeds when the workspace is already gone. */
  async deleteWorkspace(id: string): Promise<void> {
    await this.send("DELETE", workspacePath(id));
  }

  /**
   * Flushes the workspace to its store, then removes it from the sandbox: "flushing" while the
   * flush runs (ask again), "gone" once it is flushed and removed (or was not there), with
   * what the sandbox last said of it (its last flush) when it was there.
   */
  async releaseWorkspace(id: string): Promise<Released> {
    const res = await this.send("DELETE", `${workspacePath(id)}?flush=true`, { ok: [200, 202, 204] });
    if (res.status === 202) return { state: "flushing" };
    return res.status === 200
      ? { state: "gone", info: (await res.json()) as WorkspaceInfo }
      : { state: "gone" };
  }

  /** Writes a file (parent directories are created); `created` is false when it replaced one. */
  async writeFile(id: string, path: string, data: string | Uint8Array): Promise<{ created: boolean }> {
    const res = await this.send("PUT", filePath(id, path), { body: data });
    return { created: res.status === 201 };
  }

  /** The file's bytes; throws SandboxApiError with status 404 when it does not exist. */
  async readFile(id: string, path: string): Promise<Uint8Array> {
    return (await this.send("GET", filePath(id, path), { maxBytes: this.maxFileBytes })).bytes();
  }

  async readTextFile(id: string, path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFile(id, path));
  }

  /** Writes a file from a stream of `length` bytes (when known); the sandbox caps its size. */
  async writeFileStream(
    id: string,
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: { length?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ created: boolean }> {
    const res = await this.send("PUT", filePath(id, path), {
      body: data,
      ...(options.length !== undefined ? { headers: { "content-length": String(options.length) } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      timeoutMs: options.timeoutMs ?? 600_000,
    });
    return { created: res.status === 201 };
  }

  /**
   * A file as a stream: 200 with the whole file, or 206 with the one range asked for
   * (`range`, a Range header value such as "bytes=0-99"). 416 is an error carrying the size.
   */
  async openFile(
    id: string,
    path: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<StreamedAnswer> {
    const res = await this.send("GET", filePath(id, path), {
      stream: true,
      timeoutMs: 600_000,
      ...(options.range ? { headers: { range: options.range } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return res.streamed();
  }

  /** The entries of a directory of the workspace ("" or omitted: the workspace itself). */
  async listDir(id: string, path = ""): Promise<DirListing> {
    const res = await this.send("GET", subPath(id, "dir", path), { maxBytes: 16 << 20 });
    return res.json() as DirListing;
  }

  /** A directory of the workspace ("": all of it) as a tar stream. */
  async archive(id: string, path = "", options: { signal?: AbortSignal } = {}): Promise<StreamedAnswer> {
    const res = await this.send("GET", subPath(id, "archive", path), {
      stream: true,
      timeoutMs: 3_600_000,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return res.streamed();
  }

  /** Idempotent: succeeds when the file is already gone. */
  async deleteFile(id: string, path: string): Promise<void> {
    await this.send("DELETE", filePath(id, path));
  }

  /** Runs argv in the workspace (no shell) and waits for it; aborting `signal` kills it. */
  async exec(
    id: string,
    request: ExecRequest,
    options: { signal?: AbortSignal; execId?: string } = {},
  ): Promise<ExecResult> {
    const timeoutMs =
      request.timeoutSeconds !== undefined ? Math.ceil(request.timeoutSeconds * 1000) : 600_000;
    const res = await this.send("POST", `${workspacePath(id)}/exec`, {
      json: request,
      ...execIdHeader(options.execId),
      timeoutMs: timeoutMs + EXEC_SLACK_MS,
      maxBytes: this.maxFileBytes,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return res.json() as ExecResult;
  }

  /**
   * Runs argv in the workspace and yields its output as it comes (stdout and stderr
   * records), then one `exit` record. Aborting `signal` (or leaving the loop early) closes
   * the connection, which kills the command. `onStart` is called once the sandbox accepted it.
   */
  async *execStream(
    id: string,
    request: ExecRequest,
    options: { signal?: AbortSignal; onStart?: () => void; execId?: string } = {},
  ): AsyncGenerator<ExecStreamRecord> {
    const timeoutMs =
      request.timeoutSeconds !== undefined ? Math.ceil(request.timeoutSeconds * 1000) : 600_000;
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const res = await this.send("POST", `${workspacePath(id)}/exec`, {
      json: request,
      ...execIdHeader(options.execId),
      accept: EXEC_STREAM_MEDIA_TYPE,
      timeoutMs: timeoutMs + EXEC_SLACK_MS,
      signal,
      stream: true,
    });
    options.onStart?.();
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of res.stream()) {
        buffered += decoder.decode(chunk, { stream: true });
        if (buffered.length > this.maxResponseBytes)
          throw new SandboxApiError(
            res.status,
            `a streamed record is larger than ${this.maxResponseBytes} bytes`,
          );
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (line.trim()) yield JSON.parse(line) as ExecStreamRecord;
      }
      if (buffered.trim()) yield JSON.parse(buffered) as ExecStreamRecord;
    } finally {
      stop.abort();
    }
  }

  /**
   * Stops the command started with `execId` (its process tree is killed; its own request
   * then ends with an `exit` record). False when no such command runs (any more).
   */
  async cancelExec(id: string, execId: string): Promise<boolean> {
    const res = await this.send("DELETE", `${workspacePath(id)}/exec/${encodeURIComponent(execId)}`, {
      ok: [404],
    });
    return res.status === 202;
  }

  private async send(
    method: string,
    path: string,
    options: {
      json?: unknown;
      body?: string | Uint8Array | AsyncIterable<Uint8Array>;
      headers?: Record<string, string>;
      ok?: number[];
      timeoutMs?: number;
      accept?: string;
      signal?: AbortSignal;
      /** A probe path: no token goes with it. */
      open?: boolean;
      maxBytes?: number;
      /** A successful answer's body is left to read as a stream (an error's is read here). */
      stream?: boolean;
    } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.open
      ? undefined
      : typeof this.token === "function"
        ? await this.token()
        : this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.accept) headers.accept = options.accept;
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (body !== undefined) headers["content-type"] = "application/octet-stream";
    const where = `sandbox ${this.baseUrl}: ${method} ${path}`;
    const maxBytes = options.maxBytes ?? this.maxResponseBytes;
    let res: Response;
    let bytes: Uint8Array | undefined;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        method,
        headers,
        redirect: "manual",
        ...(body !== undefined ? { body: body as NonNullable<RequestInit["body"]> } : {}),
        ...(body !== undefined && typeof body === "object" && Symbol.asyncIterator in body
          ? { duplex: "half" }
          : {}),
        signal: AbortSignal.any([
          AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs),
          ...(options.signal ? [options.signal] : []),
        ]),
      });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => undefined);
        throw new SandboxApiError(
          res.status,
          `${where}: answered a redirect (${res.status}), which is never followed`,
        );
      }
      const ok = (options.ok ?? []).includes(res.status) || (res.status >= 200 && res.status < 300);
      if (ok && options.stream) return new Answer(res.status, new Uint8Array(), res);
      bytes = await readCapped(res, maxBytes, where);
    } catch (err) {
      if (err instanceof SandboxApiError) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new SandboxApiError(0, `${where} failed: ${reason}`);
    }
    const answer = new Answer(res.status, bytes);
    if ((options.ok ?? []).includes(res.status) || (res.status >= 200 && res.status < 300)) return answer;
    const text = answer.text();
    let problem: Problem | undefined;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = undefined;
    }
    const detail = problem?.detail ?? text.slice(0, 200);
    throw new SandboxApiError(res.status, `${where}: ${res.status} ${detail}`, problem);
  }
}

/** A successful answer whose body is read as it arrives. */
export interface StreamedAnswer {
  status: number;
  headers: Headers;
  body: AsyncIterable<Uint8Array>;
}

/** An answer read whole (within its cap), or left to stream. */
class Answer {
  readonly status: number;
  private readonly body: Uint8Array;
  private readonly response: Response | undefined;
  constructor(status: number, body: Uint8Array, response?: Response) {
    this.status = status;
    this.body = body;
    this.response = response;
  }
  /** Status, headers and body of an answer sent with `stream`. */
  streamed(): StreamedAnswer {
    return { status: this.status, headers: this.response?.headers ?? new Headers(), body: this.stream() };
  }

  /** The body as it arrives (an answer sent with `stream`). */
  stream(): AsyncIterable<Uint8Array> {
    return (this.response?.body ?? []) as AsyncIterable<Uint8Array>;
  }
  bytes(): Uint8Array {
    return this.body;
  }
  text(): string {
    return new TextDecoder().decode(this.body);
  }
  json(): unknown {
    return JSON.parse(this.text());
  }
}

/** The body, or a SandboxApiError when it is longer than `max` bytes (the rest is not read). */
async function readCapped(res: Response, max: number, where: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "");
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new SandboxApiError(
      res.status,
      `${where}: the answer (${declared} bytes) is larger than ${max} bytes`,
    );
  }
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) {
      await res.body.cancel().catch(() => undefined);
      throw new SandboxApiError(res.status, `${where}: the answer is larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
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

/** /workspaces/{id}/<route>[/<path>] for the directory routes ("" is the workspace itself). */
function subPath(id: string, route: "dir" | "archive", path: string): string {
  if (path === "") return `${workspacePath(id)}/${route}`;
  return filePath(id, path).replace(/\/files\//, `/${route}/`);
}

function execIdHeader(execId: string | undefined): { headers?: Record<string, string> } {
  return execId === undefined ? {} : { headers: { [EXEC_ID_HEADER]: execId } };
}
