// The sandbox runtime's HTTP API on node:http: routing, auth, bodies and problem+json
// errors. Every route but the probes needs a token (access.ts says which); the work itself
// is in workspaces.ts (files), exec.ts (commands), load.ts (load).
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { authorize } from "../../lib/http/auth.ts";
import { checkLength, json, readJson } from "../../lib/http/body.ts";
import { badRequest, methodNotAllowed, ProblemError, sendProblem } from "../../lib/http/problem.ts";
import type { Log } from "../../lib/log.ts";
import type { TokenVerifier } from "../../lib/tokens.ts";
import {
  CreateWorkspaceRequest,
  ExecRequest,
  LoadOverride,
  type DrainAnswer,
  type SandboxStatus,
  type WorkspaceList,
} from "../../contracts/sandbox.ts";
import { accessFor, type PodIdentity } from "./access.ts";
import type { ExecPool } from "./exec.ts";
import type { LoadSampler } from "./load.ts";
import { parseFilePath, validateWorkspaceId, type WorkspaceStore } from "./workspaces.ts";

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
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: Params) => Promise<void> | void;
interface Params {
  id: string;
  file: string;
}

export class SandboxApp {
  draining = false;
  /** Set during shutdown: every answer closes its connection so the server can stop. */
  closing = false;
  private readonly o: SandboxAppOptions;
  private readonly execBody;

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
    return {
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
      res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" });
      res.end(ready ? "ok" : "draining");
      return;
    }
    await authorize(this.o.verifier, req, access, "agentry-sandbox");
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
        return one({ GET: (_q, r) => json(r, 200, { items: this.o.store.list() } satisfies WorkspaceList) });
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
        DELETE: (_q, r, p) => this.deleteWorkspace(r, p.id),
      });
    if (parts.length === 3 && third === "exec") return one({ POST: (q, r, p) => this.exec(q, r, p.id) });
    if (third === "files" && parts.length >= 4) {
      params.file = parts.slice(3).join("/");
      return one({
        GET: (_q, r, p) => this.getFile(r, p),
        PUT: (q, r, p) => this.putFile(q, r, p),
        DELETE: (_q, r, p) => this.deleteFile(r, p),
      });
    }
    return undefined;
  }

  private setDraining(res: ServerResponse, draining: boolean): void {
    this.draining = draining;
    this.o.log.info(draining ? "draining: no new workspaces" : "undrained: accepting workspaces");
    json(res, 200, { draining } satisfies DrainAnswer);
  }

  private async putLoad(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.o.load.override(await readJson(req, LoadOverride, this.o.maxJsonBytes));
    json(res, 200, this.status());
  }

  private getWorkspace(res: ServerResponse, id: string): void {
    const info = this.o.store.get(id);
    if (!info) throw new ProblemError(404, `workspace "${id}" not found`);
    json(res, 200, info);
  }

  private async putWorkspace(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = await readJson(req, CreateWorkspaceRequest, this.o.maxJsonBytes);
    const { info, created } = await this.o.store.create(id, body.ownerId ?? null, !this.draining);
    if (created) this.o.log.info("workspace created", { workspace: id });
    json(res, created ? 201 : 200, info);
  }

  private async deleteWorkspace(res: ServerResponse, id: string): Promise<void> {
    this.o.pool.abort(join(this.o.store.root, id));
    const existed = this.o.store.get(id) !== undefined;
    await this.o.store.remove(id);
    if (existed) this.o.log.info("workspace deleted", { workspace: id });
    res.writeHead(204).end();
  }

  private async exec(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = await readJson(req, this.execBody, this.o.maxJsonBytes);
    const cwd = this.o.store.dir(id);
    const result = await this.o.pool.run({
      command: body.command,
      cwd,
      timeoutMs: (body.timeoutSeconds ?? this.o.maxExecSeconds) * 1000,
      maxOutputBytes: this.o.maxOutputBytes,
      ...(body.env ? { env: body.env } : {}),
      ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
    });
    this.o.log.info("command finished", {
      workspace: id,
      program: body.command[0],
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
    });
    json(res, 200, result);
  }

  private async getFile(res: ServerResponse, p: Params): Promise<void> {
    const { handle, size } = await this.o.store.openFile(p.id, parseFilePath(p.file));
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
    await pipeline(handle.createReadStream(), res);
  }

  private async putFile(req: IncomingMessage, res: ServerResponse, p: Params): Promise<void> {
    const segments = parseFilePath(p.file);
    this.o.store.dir(p.id);
    checkLength(req, this.o.maxFileBytes);
    const { created } = await this.o.store.writeFile(p.id, segments, req, this.o.maxFileBytes);
    res.writeHead(created ? 201 : 204).end();
  }

  private async deleteFile(res: ServerResponse, p: Params): Promise<void> {
    await this.o.store.deleteFile(p.id, parseFilePath(p.file));
    res.writeHead(204).end();
  }
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest("workspace id is not valid percent-encoding");
  }
}
