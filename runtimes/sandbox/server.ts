// The sandbox runtime's HTTP API on node:http: routing, auth, bodies and problem+json
// errors. Every route but the probes needs a token (access.ts says which); the work itself
// is in workspaces.ts (files), exec.ts (commands), load.ts (load).
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { authorize } from "../../lib/http/auth.ts";
import { healthBody } from "../../lib/http/health.ts";
import { checkLength, drained, json, readJson } from "../../lib/http/body.ts";
import { badRequest, methodNotAllowed, ProblemError, sendProblem } from "../../lib/http/problem.ts";
import type { Log } from "../../lib/log.ts";
import type { TokenVerifier } from "../../lib/tokens.ts";
import { Audience, type TokenClaims } from "../../contracts/tokens.ts";
import {
  CreateWorkspaceRequest,
  EXEC_ID_HEADER,
  EXEC_ID_PATTERN,
  EXEC_STREAM_MEDIA_TYPE,
  type ExecCancelAnswer,
  ExecRequest,
  type ExecResult,
  type ExecStreamRecord,
  LoadOverride,
  type DrainAnswer,
  type SandboxStatus,
  type WorkspaceInfo,
  type WorkspaceList,
} from "../../contracts/sandbox.ts";
import { accessFor, type PodIdentity } from "./access.ts";
import type { Backing } from "./backing.ts";
import type { ExecPool, OutputSink } from "./exec.ts";
import { listDirectory, parseRange, writeArchive } from "./browse.ts";
import type { LoadSampler } from "./load.ts";
import { parseFilePath, validateWorkspaceId, type WorkspaceStore } from "./workspaces.ts";
import type { SandboxMetrics } from "./metrics.ts";

export interface SandboxAppOptions {
  store: WorkspaceStore;
  pool: ExecPool;
  load: LoadSampler;
  log: Log;
  /** The trusted public keys (AGENTRY_TRUST_DIR). */
  verifier: TokenVerifier;
  /** This sandbox's pod: tokens for it open the pod's routes. */
  pod: PodIdentity | undefined;
  allowLoadOverride: boolean;
  maxExecSeconds: number;
  maxOutputBytes: number;
  maxFileBytes: number;
  maxJsonBytes?: number;
  /** The workspaces' object store (restore, flushes); a Backing without a store when none. */
  backing: Backing;
  /** Counts commands (Prometheus); none in tests that do not look. */
  metrics?: SandboxMetrics;
  /**
   * How long a call for a workspace this sandbox does not hold waits for it to come (a wake
   * of a workspace suspended for idleness), before 503 with Retry-After. 0: no wait.
   */
  wakeWaitMs?: number;
}

/** How long a wake request stays in /status for the operator to see. */
const WAKE_REQUEST_MS = 120_000;
/** At most this many workspaces are asked to wake at once (the oldest request goes first). */
const MAX_WAKE_REQUESTS = 256;
/** How often a call waiting for its workspace looks again. */
const WAKE_POLL_MS = 100;

type Handler = (req: IncomingMessage, res: ServerResponse, params: Params) => Promise<void> | void;
interface Params {
  id: string;
  file: string;
  execId?: string;
}

export class SandboxApp {
  draining = false;
  /** Set during shutdown: every answer closes its connection so the server can stop. */
  closing = false;
  private readonly o: SandboxAppOptions;
  private readonly execBody;
  /** When each workspace last had a data-plane call (ms since the epoch). */
  private readonly activity = new Map<string, number>();
  /** Commands started with an exec id, by that id: what DELETE .../exec/{execId} stops. */
  private readonly named = new Map<string, { workspace: string; cancel: AbortController }>();
  /** The verified token of each request in flight. */
  private readonly claims = new WeakMap<IncomingMessage, TokenClaims>();
  /** Workspaces callers asked for that this sandbox does not hold, by time of the first ask. */
  private readonly wakeRequests = new Map<string, number>();

  constructor(options: SandboxAppOptions) {
    this.o = options;
    this.execBody = ExecRequest.extend({
      timeoutSeconds: z.number().positive().max(options.maxExecSeconds).optional(),
    });
  }

  /** The request listener for node:http. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (this.closing) res.setHeader("connection", "close");
    res.once("finish", () =>
      this.o.log.debug("request", {
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Math.round(performance.now() - started),
      }),
    );
    this.route(req, res, path).catch((err: unknown) => sendProblem(req, res, err, this.o.log, "sandbox"));
  };

  status(): SandboxStatus {
    const wakeRequests = this.pendingWakes();
    return {
      ...(wakeRequests.length ? { wakeRequests } : {}),
      ...this.o.load.current(),
      workspaces: this.o.store.count,
      draining: this.draining,
      maxWorkspaces: this.o.store.maxWorkspaces,
    };
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const parts = path.split("/").slice(1);
    const access = accessFor(req.method ?? "", path, this.o.pod);
    if (access === "open") {
      if (req.method !== "GET" && req.method !== "HEAD") throw methodNotAllowed(["GET"]);
      const ready = parts[0] === "healthz" || !this.draining;
      res.writeHead(ready ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify(healthBody(ready ? undefined : "draining")));
      return;
    }
    this.claims.set(req, await authorize(this.o.verifier, req, access, "agentry-sandbox"));
    const routes = this.match(parts);
    if (!routes) throw new ProblemError(404, `no route for ${path}`);
    const handler = routes.handlers[req.method === "HEAD" ? "GET" : (req.method ?? "")];
    if (!handler) throw methodNotAllowed(Object.keys(routes.handlers));
    await handler(req, res, routes.params);
  }

  private match(parts: string[]): { handlers: Record<string, Handler>; params: Params } | undefined {
    const [first, second, third] = parts;
    const params: Params = { id: "", file: "" };
    const one = (handlers: Record<string, Handler>) => ({ handlers, params });
    if (parts.length === 1) {
      if (first === "status") return one({ GET: (_q, r) => json(r, 200, this.status()) });
      if (first === "drain") return one({ POST: (_q, r) => this.setDraining(r, true) });
      if (first === "undrain") return one({ POST: (_q, r) => this.setDraining(r, false) });
      if (first === "workspaces")
        return one({
          GET: (_q, r) =>
            json(r, 200, { items: this.o.store.list().map((w) => this.info(w)) } satisfies WorkspaceList),
        });
    }
    if (parts.length === 2 && first === "debug" && second === "load" && this.o.allowLoadOverride)
      return one({ PUT: (q, r) => this.putLoad(q, r) });
    if (first !== "workspaces" || second === undefined) return undefined;
    params.id = decodeSegment(second);
    validateWorkspaceId(params.id);
    if (parts.length === 2)
      return one({
        GET: (_q, r, p) => this.getWorkspace(r, p.id),
        PUT: (q, r, p) => this.putWorkspace(q, r, p.id),
        DELETE: (q, r, p) => this.deleteWorkspace(q, r, p.id),
      });
    if (parts.length === 3 && third === "exec") return one({ POST: (q, r, p) => this.exec(q, r, p.id) });
    if (parts.length === 4 && third === "exec") {
      params.execId = decodeSegment(parts[3]!);
      return one({ DELETE: (_q, r, p) => this.cancelExec(r, p.id, p.execId!) });
    }
    if ((third === "dir" || third === "archive") && !parts.slice(3).includes("")) {
      const segments = parts.length > 3 ? parseFilePath(parts.slice(3).join("/")) : [];
      return one(
        third === "dir"
          ? {
              GET: async (q, r, p) => {
                await this.usable(p.id, q);
                json(r, 200, await listDirectory(this.o.store, p.id, segments));
              },
            }
          : {
              GET: async (q, r, p) => {
                await this.usable(p.id, q);
                await writeArchive(this.o.store, p.id, segments, r);
              },
            },
      );
    }
    if (third === "files" && parts.length >= 4) {
      params.file = parts.slice(3).join("/");
      return one({
        GET: (q, r, p) => this.getFile(q, r, p),
        PUT: (q, r, p) => this.putFile(q, r, p),
        DELETE: (q, r, p) => this.deleteFile(q, r, p),
      });
    }
    return undefined;
  }

  private setDraining(res: ServerResponse, draining: boolean): void {
    this.draining = draining;
    this.o.log.info(
      draining ? "draining: no new workspaces, flushing every workspace" : "undrained: accepting workspaces",
    );
    if (draining) void this.o.backing.flushAll();
    json(res, 200, { draining } satisfies DrainAnswer);
  }

  /**
   * A workspace as answered: when it last had a data-plane call (now while a command runs),
   * and its durability when this sandbox backs it.
   */
  private info(w: WorkspaceInfo): WorkspaceInfo {
    const durability = this.o.backing.state(w.id);
    const last = this.o.pool.runningIn(w.id) ? Date.now() : this.activity.get(w.id);
    return {
      ...w,
      lastActivityTime: last === undefined ? w.createdAt : new Date(last).toISOString(),
      ...(durability ? { durability } : {}),
    };
  }

  /**
   * Files and exec wait for the workspace's files to be in (restore or clone). Every call
   * that gets here is data-plane activity of the workspace. A call for a workspace this
   * sandbox does not hold, with a token for that workspace, asks for it to wake (see
   * awaitWake) before the workspace's 404.
   */
  private async usable(id: string, req: IncomingMessage): Promise<void> {
    if (!this.o.store.get(id) && this.claims.get(req)?.aud === Audience.workspace(id))
      await this.awaitWake(id, req);
    this.o.store.dir(id);
    this.activity.set(id, Date.now());
    if (this.o.backing.ready(id)) return;
    const st = this.o.backing.state(id);
    throw new ProblemError(
      503,
      st?.phase === "failed"
        ? `workspace "${id}" could not be brought in: ${st.message ?? "unknown error"}`
        : `workspace "${id}" is being restored; try again shortly`,
      { "retry-after": "2" },
    );
  }

  /**
   * A caller holding a token for workspace `id` reached this sandbox, which does not hold it:
   * most likely the workspace was suspended for idleness from here (the caller kept its
   * address). The request is listed in /status, which the operator reads at every sample: it
   * wakes the workspace if it sleeps, placing it back here where it fits. The call waits for
   * the workspace to arrive and be restored, up to wakeWaitMs; 503 with Retry-After past it.
   */
  private async awaitWake(id: string, req: IncomingMessage): Promise<void> {
    const bound = this.o.wakeWaitMs ?? 0;
    if (!this.wakeRequests.has(id)) {
      this.wakeRequests.set(id, Date.now());
      if (this.wakeRequests.size > MAX_WAKE_REQUESTS)
        this.wakeRequests.delete(this.wakeRequests.keys().next().value!);
      this.o.log.info("a call for a workspace not held here: asking for it to wake", { workspace: id });
    }
    const deadline = Date.now() + bound;
    while (Date.now() < deadline && !req.destroyed) {
      if (this.o.store.get(id) && this.o.backing.ready(id)) return;
      await new Promise((resolve) => setTimeout(resolve, WAKE_POLL_MS));
    }
    if (this.o.store.get(id) && this.o.backing.ready(id)) return;
    throw new ProblemError(
      503,
      `workspace "${id}" is not on this sandbox: if it was suspended for idleness it is being woken; retry shortly (its Workspace's status says where it is placed)`,
      { "retry-after": "5" },
    );
  }

  /** The wake requests still worth the operator's attention (for workspaces not held here). */
  private pendingWakes(): string[] {
    const now = Date.now();
    for (const [id, at] of this.wakeRequests)
      if (now - at > WAKE_REQUEST_MS || this.o.store.get(id)) this.wakeRequests.delete(id);
    return [...this.wakeRequests.keys()];
  }

  private async putLoad(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.o.load.override(await readJson(req, LoadOverride, this.o.maxJsonBytes));
    json(res, 200, this.status());
  }

  private getWorkspace(res: ServerResponse, id: string): void {
    const info = this.o.store.get(id);
    if (!info) throw new ProblemError(404, `workspace "${id}" not found`);
    json(res, 200, this.info(info));
  }

  private async putWorkspace(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = await readJson(req, CreateWorkspaceRequest, this.o.maxJsonBytes);
    const { info, created } = await this.o.store.create(id, body.ownerId ?? null, !this.draining);
    const dir = this.o.store.dir(id);
    if (created) {
      this.o.log.info("workspace created", { workspace: id });
      const git = body.source?.git;
      this.o.backing.place({
        id,
        dir,
        ...(git
          ? {
              source: {
                url: git.url,
                ...(git.ref ? { ref: git.ref } : {}),
                ...(git.credentials ? { credentials: git.credentials } : {}),
              },
            }
          : {}),
        settle: () => this.o.store.reown(id),
      });
      // Nothing to fetch (no store, no git source): the empty workspace is usable on the answer.
      if (!git && !this.o.backing.hasStore) await this.o.backing.placed(id);
    } else this.o.backing.adopt(id, dir);
    json(res, created ? 201 : 200, this.info(info));
  }

  /**
   * Removes the workspace from this sandbox. With ?flush=true its files go to the store
   * first: 202 while that flush runs (the caller asks again), then 200 with the workspace as
   * of that flush once removed; 204 otherwise.
   */
  private async deleteWorkspace(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const flush = new URL(req.url ?? "/", "http://x").searchParams.get("flush") === "true";
    const st = this.o.backing.state(id);
    if (
      flush &&
      st?.phase === "ready" &&
      this.o.backing.enabled &&
      (st.dirty || this.o.backing.flushing(id))
    ) {
      if (!this.o.backing.flushing(id)) void this.o.backing.flush(id).catch(() => undefined);
      res.writeHead(202, { "retry-after": "1" }).end();
      return;
    }
    this.o.pool.abort(id);
    const existing = this.o.store.get(id);
    // What a flushing release answers: the workspace as of its last flush.
    const last = flush && existing ? this.info(existing) : undefined;
    this.o.backing.forget(id);
    this.activity.delete(id);
    await this.o.store.remove(id);
    if (existing) this.o.log.info("workspace removed from this sandbox", { workspace: id, flushed: flush });
    if (last) json(res, 200, last);
    else res.writeHead(204).end();
  }

  /**
   * Runs a command: the JSON answer when it is done, or (Accept: application/x-ndjson) its
   * output as it comes, one record per line. A client that goes away cancels it, also
   * while it waits for a slot.
   */
  private async exec(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    await this.usable(id, req);
    const body = await readJson(req, this.execBody, this.o.maxJsonBytes);
    const cwd = await this.o.store.workingDir(id, body.cwd);
    const streamed = (req.headers.accept ?? "").includes(EXEC_STREAM_MEDIA_TYPE);
    const execId = req.headers[EXEC_ID_HEADER];
    if (execId !== undefined && (typeof execId !== "string" || !EXEC_ID_PATTERN.test(execId)))
      throw badRequest(`header ${EXEC_ID_HEADER} must be one lowercase UUID`);
    if (execId !== undefined && this.named.has(execId))
      throw new ProblemError(409, `a command with exec id ${execId} is already running`);
    const gone = new AbortController();
    const cancel = new AbortController();
    if (execId !== undefined) this.named.set(execId, { workspace: id, cancel });
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new Error("the client went away"));
    };
    res.once("close", onClose);
    const sink = streamed ? ndjsonSink(res) : undefined;
    const metrics = this.o.metrics;
    metrics?.execsInFlight.inc();
    let result: ExecResult;
    try {
      result = await this.o.pool.run(
        id,
        this.o.store.user(id),
        {
          command: body.command,
          cwd,
          home: this.o.store.dir(id),
          timeoutMs: (body.timeoutSeconds ?? this.o.maxExecSeconds) * 1000,
          maxOutputBytes: this.o.maxOutputBytes,
          ...(body.env ? { env: body.env } : {}),
          ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
          ...(sink ? { sink: sink.sink, onStart: sink.start } : {}),
        },
        AbortSignal.any([gone.signal, cancel.signal]),
      );
    } catch (err) {
      const cancelled = gone.signal.aborted || cancel.signal.aborted;
      metrics?.exec(cancelled ? "cancelled" : "failed", undefined);
      if (cancel.signal.aborted && !gone.signal.aborted && !res.headersSent)
        throw new ProblemError(409, `command ${String(execId)} was cancelled before it started`);
      if (gone.signal.aborted) return; // nobody to answer
      if (!sink || !res.headersSent) throw err;
      this.o.log.error("streamed command failed", { workspace: id, error: String(err) });
      sink.end({ type: "error", detail: "the sandbox failed while running the command; see its log" });
      return;
    } finally {
      metrics?.execsInFlight.dec();
      res.off("close", onClose);
      this.activity.set(id, Date.now());
      if (execId !== undefined) this.named.delete(execId);
      this.o.backing.touched(id);
    }
    const cancelled = gone.signal.aborted || cancel.signal.aborted;
    const outcome = cancelled ? "cancelled" : result.timedOut ? "timed_out" : "exited";
    metrics?.exec(outcome, result.durationMs / 1000);
    this.o.log.info("command finished", {
      workspace: id,
      program: body.command[0],
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      cancelled: gone.signal.aborted || cancel.signal.aborted,
      durationMs: result.durationMs,
    });
    if (gone.signal.aborted) return;
    if (!sink) return json(res, 200, result);
    const { stdout: _out, stderr: _err, ...exit } = result;
    sink.end({ type: "exit", ...exit });
  }

  /** Stops a command started with this exec id in this workspace (202), else 404. */
  private cancelExec(res: ServerResponse, id: string, execId: string): void {
    const running = this.named.get(execId);
    if (!running || running.workspace !== id)
      throw new ProblemError(404, `no command with exec id ${execId} runs in workspace ${id}`);
    running.cancel.abort(new Error("cancelled"));
    this.o.log.info("command cancelled", { workspace: id, execId });
    json(res, 202, { execId, cancelled: true } satisfies ExecCancelAnswer);
  }

  private async getFile(req: IncomingMessage, res: ServerResponse, p: Params): Promise<void> {
    await this.usable(p.id, req);
    const { handle, size } = await this.o.store.openFile(p.id, parseFilePath(p.file));
    let range;
    try {
      range = parseRange(req.headers.range, size);
    } catch (err) {
      await handle.close();
      throw err;
    }
    const headers = { "content-type": "application/octet-stream", "accept-ranges": "bytes" };
    if (!range) {
      res.writeHead(200, { ...headers, "content-length": size });
      return pipeline(handle.createReadStream(), res);
    }
    res.writeHead(206, {
      ...headers,
      "content-length": range.end - range.start + 1,
      "content-range": `bytes ${range.start}-${range.end}/${size}`,
    });
    await pipeline(handle.createReadStream({ start: range.start, end: range.end }), res);
  }

  private async putFile(req: IncomingMessage, res: ServerResponse, p: Params): Promise<void> {
    const segments = parseFilePath(p.file);
    await this.usable(p.id, req);
    checkLength(req, this.o.maxFileBytes);
    const { created } = await this.o.store.writeFile(p.id, segments, req, this.o.maxFileBytes);
    this.o.backing.touched(p.id);
    res.writeHead(created ? 201 : 204).end();
  }

  private async deleteFile(req: IncomingMessage, res: ServerResponse, p: Params): Promise<void> {
    await this.usable(p.id, req);
    await this.o.store.deleteFile(p.id, parseFilePath(p.file));
    this.o.backing.touched(p.id);
    res.writeHead(204).end();
  }
}

/** Streams exec records as JSON lines; the headers go out when the command starts. */
function ndjsonSink(res: ServerResponse): {
  sink: OutputSink;
  start: () => void;
  end: (record: ExecStreamRecord) => void;
} {
  const line = (record: ExecStreamRecord) => `${JSON.stringify(record)}\n`;
  const start = () => {
    if (res.headersSent) return;
    res.writeHead(200, {
      "content-type": EXEC_STREAM_MEDIA_TYPE,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    res.flushHeaders();
  };
  return {
    start,
    sink: {
      write: (stream, data) => {
        start();
        return res.write(line({ type: stream, data }));
      },
      drained: () => drained(res),
    },
    end: (record) => {
      start();
      res.end(line(record));
    },
  };
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest("workspace id is not valid percent-encoding");
  }
}
