// The agent runtime's HTTP API on node:http: health and readiness, info, tasks (one model
// call each, with a timeout and a concurrency cap) and a passthrough to the workspace on
// its sandbox. Every route but the probes needs a token for this agent or its pod with the
// route's scope (contracts/agent.ts); /readyz gives its reason only to such a token. Errors
// are RFC 9457 problem+json, as in the sandbox runtime.
import type { AgentMetrics } from "./metrics.ts";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { authorize } from "../../lib/http/auth.ts";
import { checkLength, json, readBody, readJson } from "../../lib/http/body.ts";
import { badRequest, conflict, methodNotAllowed, ProblemError, sendProblem } from "../../lib/http/problem.ts";
import type { Log } from "../../lib/log.ts";
import { readTokenFile, TokenVerifier } from "../../lib/tokens.ts";
import { Audience, type TokenScope } from "../../contracts/tokens.ts";
import {
  AgentPath,
  TASK_STREAM_MEDIA_TYPE,
  TaskRequest,
  type Readiness,
  type TaskResult,
  type TaskStreamRecord,
  type TaskSummary,
} from "../../contracts/agent.ts";
import { ExecRequest } from "../../contracts/sandbox.ts";
import { SandboxApiError, SandboxClient } from "../../contracts/sandbox.client.ts";
import type { AgentConfig } from "./config.ts";
import { ProviderError, providerFor, type Complete } from "./providers.ts";
import { readiness } from "./readiness.ts";
import { errorMessage } from "../../lib/log.ts";

/** Tasks GET /v1/tasks remembers, and how much of their input and output. */
const RECENT_TASKS = 50;
const PREVIEW_CHARS = 200;
/** How often a running task touches its workspace (see keepWorkspaceAwake). */
const WORKSPACE_TOUCH_MS = 20_000;

export class AgentApp {
  /** Set on SIGTERM: /readyz fails, new tasks are refused, answers close their connection. */
  stopping = false;
  running = 0;
  private readonly c: AgentConfig;
  private readonly log: Log;
  private readonly complete: Complete | undefined;
  private readonly sandbox: SandboxClient | undefined;
  private readonly aborter = new AbortController();
  private readonly taskBody;
  private readonly verifier: TokenVerifier;
  /** Audiences of tokens that open this agent: the agent, and its pod. */
  private readonly audiences: string[];
  private workspaceFound = false;
  /** The last tasks, newest last (GET /v1/tasks answers newest first). */
  private readonly recent: TaskSummary[] = [];
  private workspaceError: string | undefined;
  private readonly metrics: AgentMetrics | undefined;

  constructor(
    config: AgentConfig,
    log: Log,
    options: { fetch?: typeof fetch; verifier?: TokenVerifier; metrics?: AgentMetrics } = {},
  ) {
    this.c = config;
    this.log = log;
    this.metrics = options.metrics;
    this.verifier = options.verifier ?? new TokenVerifier({ dir: config.trustDir });
    this.audiences = [
      ...(config.namespace ? [Audience.agent(config.namespace, config.name)] : []),
      ...(config.pod ? [Audience.pod(config.pod.namespace, config.pod.name)] : []),
    ];
    this.complete = config.model
      ? providerFor(config.model, {
          echoDelayMs: config.echoDelayMs,
          ...(options.fetch ? { fetch: options.fetch } : {}),
        })
      : undefined;
    const tokenFile = config.workspace?.tokenFile;
    this.sandbox = config.workspace
      ? new SandboxClient({
          baseUrl: config.workspace.baseUrl,
          ...(tokenFile ? { token: () => readTokenFile(tokenFile) } : {}),
          maxFileBytes: config.maxFileBytes,
          ...(options.fetch ? { fetch: options.fetch } : {}),
        })
      : undefined;
    this.taskBody = TaskRequest.extend({
      timeoutSeconds: z.number().positive().max(config.maxTaskTimeoutSeconds).optional(),
    });
  }

  readiness(): Readiness {
    return readiness({
      modelProblem: this.c.modelProblem,
      workspaceProblem: this.c.workspaceProblem,
      workspace: this.c.workspace
        ? { name: this.c.workspace.name, found: this.workspaceFound, lastError: this.workspaceError }
        : undefined,
      stopping: this.stopping,
    });
  }

  /** Asks the sandbox whether the workspace exists; true once it does (then never asks again). */
  async checkWorkspace(): Promise<boolean> {
    if (!this.sandbox || !this.c.workspace || this.workspaceFound) return true;
    try {
      const info = await this.sandbox.getWorkspace(this.c.workspace.id);
      this.workspaceFound = info !== undefined;
      this.workspaceError = info ? undefined : `the sandbox at ${this.sandbox.baseUrl} does not hold it yet`;
    } catch (err) {
      this.workspaceError = errorMessage(err);
    }
    return this.workspaceFound;
  }

  /**
   * A task is activity of the agent's workspace, though the model may never touch a file:
   * the agent lists the workspace's top directory (a data-plane call, which the sandbox
   * counts) when the task starts, then every WORKSPACE_TOUCH_MS while it runs, so that
   * the workspace's idleTimeout does not suspend it under a working agent. Best effort.
   */
  private keepWorkspaceAwake(): () => void {
    const sandbox = this.sandbox;
    const id = this.c.workspace?.id;
    if (!sandbox || id === undefined) return () => undefined;
    const touch = () =>
      void sandbox
        .listDir(id)
        .catch((err: unknown) =>
          this.log.debug("could not touch the workspace", { error: errorMessage(err) }),
        );
    touch();
    const timer = setInterval(touch, WORKSPACE_TOUCH_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Aborts every running task (the grace period is over). */
  abortAll(): void {
    this.aborter.abort(new ProblemError(503, "the agent shut down before the task finished"));
  }

  /** The request listener for node:http. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (this.stopping) res.setHeader("connection", "close");
    res.once("finish", () =>
      this.log.debug("request", {
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Math.round(performance.now() - started),
      }),
    );
    this.route(req, res, path).catch((err: unknown) => sendProblem(req, res, err, this.log, "agent"));
  };

  /** Refuses the request (401/403) unless its token is for this agent or pod and allows `scope`. */
  private async allow(req: IncomingMessage, scope: TokenScope): Promise<void> {
    await authorize(this.verifier, req, { audiences: this.audiences, scope }, "agentry-agent");
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method === "HEAD" ? "GET" : (req.method ?? "");
    const only = (allowed: string) => {
      if (method !== allowed) throw methodNotAllowed([allowed]);
    };
    if (path === AgentPath.healthz) {
      only("GET");
      return json(res, 200, { status: "ok" });
    }
    if (path === AgentPath.readyz) {
      only("GET");
      // The kubelet's probe needs only the status code; the reason goes to a token's holder.
      const r = this.readiness();
      const status = r.status === "ready" ? 200 : 503;
      if (req.headers.authorization === undefined) return json(res, status, { status: r.status });
      await this.allow(req, "status");
      return json(res, status, r);
    }
    if (path === AgentPath.info) {
      await this.allow(req, "status");
      only("GET");
      return json(res, 200, this.info());
    }
    if (path === AgentPath.tasks) {
      await this.allow(req, "tasks");
      if (method === "GET") return json(res, 200, { items: [...this.recent].reverse() });
      if (method !== "POST") throw methodNotAllowed(["GET", "POST"]);
      return this.task(req, res);
    }
    if (path === AgentPath.workspaceExec) {
      await this.allow(req, "exec");
      only("POST");
      return this.exec(req, res);
    }
    if (path.startsWith(AgentPath.workspaceFiles)) {
      await this.allow(req, "files");
      if (method !== "GET" && method !== "POST") throw methodNotAllowed(["GET", "POST"]);
      return this.file(req, res, method, path.slice(AgentPath.workspaceFiles.length));
    }
    await this.allow(req, "status");
    throw new ProblemError(404, `no route for ${path}`);
  }

  private info() {
    const m = this.c.model;
    return {
      name: this.c.name,
      namespace: this.c.namespace,
      provider: m?.provider ?? null,
      model: m?.model ?? null,
      endpoint: m?.endpoint || null,
      workspace: this.c.workspace?.name ?? null,
      readiness: this.readiness(),
      tasks: { running: this.running, max: this.c.maxConcurrentTasks },
    };
  }

  private async task(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, this.taskBody, this.c.maxInputBytes);
    if (this.stopping)
      throw new ProblemError(503, "the agent is shutting down; retry on another replica or later");
    if (!this.complete)
      throw new ProblemError(503, `the agent is not ready: ${this.c.modelProblem ?? "no model"}`);
    if (this.running >= this.c.maxConcurrentTasks) {
      this.metrics?.task(429);
      throw new ProblemError(
        429,
        `the agent already runs ${this.running} tasks (AGENTRY_MAX_CONCURRENT_TASKS); retry later`,
        { "retry-after": "1" },
      );
    }
    const id = randomUUID();
    const streamed = (req.headers.accept ?? "").includes(TASK_STREAM_MEDIA_TYPE);
    const send = (record: TaskStreamRecord) => res.write(`${JSON.stringify(record)}\n`);
    if (streamed) {
      res.writeHead(200, { "content-type": TASK_STREAM_MEDIA_TYPE, "cache-control": "no-store" });
      send({ type: "started", id });
    }
    // A client that goes away cancels its task.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new ProblemError(499, "the client went away"));
    };
    res.once("close", onClose);
    const timeoutSeconds = body.timeoutSeconds ?? this.c.defaultTaskTimeoutSeconds;
    const started = performance.now();
    const summary: TaskSummary = {
      id,
      status: "running",
      startedAt: new Date().toISOString(),
      input: body.input.slice(0, PREVIEW_CHARS),
    };
    this.recent.push(summary);
    if (this.recent.length > RECENT_TASKS) this.recent.shift();
    this.running++;
    const stopTouching = this.keepWorkspaceAwake();
    let status = 500;
    try {
      const signal = AbortSignal.any([
        AbortSignal.timeout(Math.ceil(timeoutSeconds * 1000)),
        this.aborter.signal,
        gone.signal,
      ]);
      // Streamed: the model's answer goes out piece by piece as the provider sends it.
      let streamedOutput = false;
      const onOutput = streamed
        ? (data: string) => {
            streamedOutput = true;
            send({ type: "output", data });
          }
        : undefined;
      let completion;
      try {
        completion = await this.complete(body.input, signal, onOutput);
      } catch (err) {
        if (err instanceof ProviderError)
          throw new ProblemError(
            err.status,
            err.message,
            err.retryAfter ? { "retry-after": err.retryAfter } : {},
          );
        if (this.aborter.signal.aborted) throw this.aborter.signal.reason;
        if (gone.signal.aborted) throw gone.signal.reason;
        if (signal.aborted)
          throw new ProblemError(504, `the model did not answer within ${timeoutSeconds} s (timeoutSeconds)`);
        throw err;
      }
      const result: TaskResult = {
        id,
        output: completion.output,
        model: completion.model,
        ...(completion.usage ? { usage: completion.usage } : {}),
        durationMs: Math.round(performance.now() - started),
      };
      status = 200;
      Object.assign(summary, {
        output: result.output.slice(0, PREVIEW_CHARS),
        model: result.model,
      });
      if (!streamed) return json(res, 200, result);
      if (!streamedOutput) send({ type: "output", data: result.output });
      send({ type: "result", ...result });
      res.end();
    } catch (err) {
      if (err instanceof ProblemError) status = err.status;
      if (!streamed) throw err;
      const detail = err instanceof ProblemError ? err.message : "the task failed; see the agent log";
      if (!(err instanceof ProblemError)) this.log.error("task failed", { id, error: String(err) });
      if (!res.destroyed) {
        send({ type: "error", status, detail });
        res.end();
      }
    } finally {
      stopTouching();
      res.off("close", onClose);
      this.running--;
      this.metrics?.task(status, (performance.now() - started) / 1000);
      Object.assign(summary, {
        status: status === 200 ? "succeeded" : "failed",
        code: status,
        durationMs: Math.round(performance.now() - started),
      });
      this.log.info("task finished", {
        id,
        status,
        provider: this.c.model?.provider,
        durationMs: Math.round(performance.now() - started),
        inputBytes: Buffer.byteLength(body.input),
      });
      this.log.debug("task metadata", { id, metadata: body.metadata });
    }
  }

  private workspace(): { client: SandboxClient; id: string } {
    if (!this.sandbox || !this.c.workspace)
      throw conflict(
        this.c.workspaceProblem ??
          "this agent has no workspace: set spec.workspaceRef on the AgentRuntime to work in one",
      );
    return { client: this.sandbox, id: this.c.workspace.id };
  }

  private async exec(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { client, id } = this.workspace();
    const body = await readJson(req, ExecRequest, this.c.maxInputBytes);
    const result = await viaSandbox(() => client.exec(id, body));
    this.log.info("workspace command finished", {
      program: body.command[0],
      exitCode: result.exitCode,
      durationMs: result.durationMs,
    });
    json(res, 200, result);
  }

  private async file(req: IncomingMessage, res: ServerResponse, method: string, raw: string): Promise<void> {
    const { client, id } = this.workspace();
    let path: string;
    try {
      path = raw.split("/").map(decodeURIComponent).join("/");
    } catch {
      throw badRequest("file path is not valid percent-encoding");
    }
    if (method === "GET") {
      const data = await viaSandbox(() => client.readFile(id, path));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": data.byteLength });
      res.end(data);
      return;
    }
    checkLength(req, this.c.maxFileBytes);
    const data = await readBody(req, this.c.maxFileBytes);
    const { created } = await viaSandbox(() => client.writeFile(id, path, data));
    json(res, created ? 201 : 200, { path, bytes: data.byteLength, created });
  }
}

/** Sandbox errors keep their status; an unreachable sandbox is a 502. */
async function viaSandbox<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof SandboxApiError)) throw err;
    if (err.status === 0) throw new ProblemError(502, `the workspace sandbox is unreachable: ${err.message}`);
    throw new ProblemError(err.status, err.problem?.detail ?? err.message);
  }
}
