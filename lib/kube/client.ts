// One small Kubernetes REST client shared by the operator, webhook and gateway: the
// kubeconfig's authentication (kubeconfig.ts), requests over node's http/https with
// keep-alive connections, a client-side QPS/burst limit, server-side apply with the
// single field manager `agentry`, and errors that keep the apiserver's status, reason
// and message.
import type { ClientRequest, IncomingMessage, RequestOptions as HttpRequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { createSecureContext } from "node:tls";
import { urlToHttpOptions } from "node:url";
import type { ObjectMeta } from "../../api/v1alpha1/index.ts";
import { KubeConfig } from "./kubeconfig.ts";
import { resourceFor, resourcePath } from "./resources.ts";
import { errorMessage } from "../log.ts";
import { Agent as HttpAgent, request as httpRequest } from "../http/nodehttp.ts";

export const FIELD_MANAGER = "agentry";

/** How long a request and its answer may take by default, unless the caller's signal decides. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Any Kubernetes object, with the project's one ObjectMeta (api/v1alpha1). */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
}

/** An error answered by the apiserver (or the transport), with the HTTP status. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: unknown;
  constructor(status: number, reason: string, message: string, body?: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;

/** A token bucket: `qps` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(qps: number, burst: number, now: () => number = () => performance.now()) {
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
    this.now = now;
    this.last = now();
  }

  /** Milliseconds to wait before the next request may go; takes the token. */
  reserve(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  /** Takes a token if one is there (0); otherwise takes none and says how many ms until one is. */
  tryTake(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) / this.qps) * 1000;
  }
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
  /** The Accept header (default application/json), e.g. to ask for PartialObjectMetadata. */
  accept?: string;
}

/** Who the apiserver should treat a request as coming from (Impersonate-User / Impersonate-Group). */
export interface Impersonation {
  user: string;
  groups?: readonly string[];
}

export type RequestObserver = (method: string, path: string, status: number, seconds: number) => void;

export interface ClientOptions {
  qps?: number;
  burst?: number;
  userAgent?: string;
  onRequest?: RequestObserver;
  /** How long a request and its answer may take (REQUEST_TIMEOUT_MS), unless its signal decides. */
  timeoutMs?: number;
}

/**
 * The reads and writes controllers make through a client: what their unit tests record
 * (test/harness/fakekube.ts) and the operator does with a KubeClient.
 */
export type KubeApi = Pick<KubeClient, "get" | "list" | "create" | "apply" | "mergePatch" | "delete">;

/** A kubeconfig of another library that can write itself out (@kubernetes/client-node's, in tests). */
export interface ExportableKubeConfig {
  exportConfig(): string;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly server: URL;
  private readonly limiter: TokenBucket;
  private readonly userAgent: string;
  private readonly onRequest: RequestObserver | undefined;
  private readonly timeoutMs: number;
  private impersonation: Impersonation | undefined;
  /** One keep-alive pool per client (shared with the clients withImpersonation derives). */
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly origin: Pick<HttpRequestOptions, "protocol" | "hostname" | "port" | "auth">;
  /** The server URL's path (a proxy's prefix), without its trailing slash. */
  private readonly basePath: string;

  constructor(kc: KubeConfig | ExportableKubeConfig, options: ClientOptions = {}) {
    this.kubeConfig = kc instanceof KubeConfig ? kc : KubeConfig.fromYaml(kc.exportConfig());
    this.server = new URL(this.kubeConfig.server);
    // The apiserver's address as request options once, not a URL parsed per request.
    const { protocol, hostname, port, auth } = urlToHttpOptions(this.server);
    this.origin = { protocol, hostname, port, ...(auth ? { auth } : {}) };
    this.basePath = this.server.pathname.replace(/\/$/, "");
    this.limiter = new TokenBucket(options.qps ?? 200, options.burst ?? 400);
    this.userAgent = options.userAgent ?? "agentry";
    this.onRequest = options.onRequest;
    this.timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    const tls = this.kubeConfig.tls;
    if (this.server.protocol === "https:") {
      this.agent = new HttpsAgent({
        keepAlive: true,
        // One TLS context for every connection (the CA and key are parsed once, not per connection).
        secureContext: createSecureContext({
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.cert ? { cert: tls.cert } : {}),
          ...(tls.key ? { key: tls.key } : {}),
        }),
        ...(tls.servername ? { servername: tls.servername } : {}),
        rejectUnauthorized: tls.rejectUnauthorized,
      });
      this.send = httpsRequest;
    } else {
      this.agent = new HttpAgent({ keepAlive: true });
      this.send = httpRequest;
    }
  }

  /**
   * A client that sends every request as `who` (the apiserver's RBAC then decides, with this
   * client's own identity needing only the `impersonate` verb). It shares this client's
   * connection settings and rate limit.
   */
  withImpersonation(who: Impersonation): KubeClient {
    const c = Object.create(this) as KubeClient;
    c.impersonation = { user: who.user, groups: [...(who.groups ?? [])] };
    return c;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const started = performance.now();
    let status = 0;
    // Unless a signal ends it, a request and its answer get timeoutMs from when it is sent: a
    // plain timer, since an AbortSignal per request cost more than the rest of its setup.
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const limit = options.signal
      ? undefined
      : (req: ClientRequest) => {
          timer = setTimeout(() => {
            timedOut = true;
            req.destroy();
          }, this.timeoutMs);
        };
    try {
      const res = await this.open(method, path, options, options.signal, limit);
      status = res.statusCode ?? 0;
      const text = await readText(res);
      const parsed: unknown = text ? safeJson(text) : undefined;
      if (status >= 400) throw apiError(method, path, res, parsed);
      return parsed as T;
    } catch (err) {
      throw transportError(
        method,
        path,
        timedOut ? new Error(`no answer within ${this.timeoutMs / 1000}s`) : err,
      );
    } finally {
      clearTimeout(timer);
      this.onRequest?.(method, path, status, (performance.now() - started) / 1000);
    }
  }

  /**
   * A request whose successful answer is read as it arrives (pod logs): the Response, its
   * body unread; an error answer is read and thrown as an ApiError. No timeout of its own:
   * `signal` ends it.
   */
  async stream(method: string, path: string, options: RequestOptions = {}): Promise<globalThis.Response> {
    const res = await this.openStream(method, path, options);
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers))
      for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
    return new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, {
      status: res.statusCode ?? 200,
      statusText: res.statusMessage ?? "",
      headers,
    });
  }

  /** Like stream(), as node's IncomingMessage (watches read it line by line). */
  async openStream(method: string, path: string, options: RequestOptions = {}): Promise<IncomingMessage> {
    const started = performance.now();
    let status = 0;
    try {
      const res = await this.open(method, path, options, options.signal);
      status = res.statusCode ?? 0;
      if (status >= 400) {
        const text = await readText(res);
        throw apiError(method, path, res, text ? safeJson(text) : undefined);
      }
      return res;
    } catch (err) {
      throw transportError(method, path, err);
    } finally {
      this.onRequest?.(method, path, status, (performance.now() - started) / 1000);
    }
  }

  /** Sends a request (after the rate limit allows it) and resolves with the answer's head. */
  private async open(
    method: string,
    path: string,
    options: RequestOptions,
    signal: AbortSignal | undefined,
    sent?: (req: ClientRequest) => void,
  ): Promise<IncomingMessage> {
    const wait = this.limiter.reserve();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    signal?.throwIfAborted();
    let target = this.basePath + path;
    if (options.query) {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) if (v !== undefined) query.set(k, String(v));
      const q = query.toString();
      if (q) target += `?${q}`;
    }
    const headers: Record<string, string | string[]> = {
      accept: options.accept ?? "application/json",
      "user-agent": this.userAgent,
    };
    const authorization = await this.kubeConfig.authorization();
    if (authorization) headers["authorization"] = authorization;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] = options.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    if (this.impersonation) {
      headers["impersonate-user"] = this.impersonation.user;
      if (this.impersonation.groups?.length) headers["impersonate-group"] = [...this.impersonation.groups];
    }
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.send(
        { ...this.origin, path: target, method, headers, agent: this.agent, ...(signal ? { signal } : {}) },
        resolve,
      );
      req.on("error", reject);
      sent?.(req);
      req.end(body);
    });
  }

  pathOf(obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">, subresource?: string): string {
    return resourcePath(
      resourceFor(obj.apiVersion, obj.kind),
      obj.metadata.namespace,
      obj.metadata.name,
      subresource,
    );
  }

  collectionPath(apiVersion: string, kind: string, namespace?: string): string {
    return resourcePath(resourceFor(apiVersion, kind), namespace);
  }

  get<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<T> {
    return this.request<T>("GET", this.pathOf({ apiVersion, kind, metadata: { namespace, name } }));
  }

  list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    query: RequestOptions["query"] = {},
  ): Promise<KubeList<T>> {
    return this.request<KubeList<T>>("GET", this.collectionPath(apiVersion, kind, namespace), { query });
  }

  create<T extends KubeObject>(obj: T): Promise<T> {
    return this.request<T>("POST", this.collectionPath(obj.apiVersion, obj.kind, obj.metadata.namespace), {
      body: obj,
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  replace<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    return this.request<T>("PUT", this.pathOf(obj, subresource), {
      body: obj,
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /** Server-side apply as field manager `agentry`, taking over conflicting fields. */
  apply<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    return this.request<T>("PATCH", this.pathOf(obj, subresource), {
      body: obj,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  mergePatch<T extends KubeObject>(
    target: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return this.request<T>("PATCH", this.pathOf(target, subresource), {
      body: patch,
      contentType: "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /** Deletes an object; with `uid`, only that incarnation (a precondition). Missing is not an error. */
  async delete(
    target: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    options: {
      uid?: string;
      propagation?: "Background" | "Foreground" | "Orphan";
      gracePeriodSeconds?: number;
    } = {},
  ): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (options.uid) body.preconditions = { uid: options.uid };
    if (options.propagation) body.propagationPolicy = options.propagation;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    try {
      await this.request("DELETE", this.pathOf(target), { body });
      return true;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return false;
      throw err;
    }
  }
}

function apiError(method: string, path: string, res: IncomingMessage, parsed: unknown) {
  const s = parsed as { reason?: string; message?: string } | undefined;
  const status = res.statusCode ?? 0;
  return new ApiError(
    status,
    s?.reason ?? res.statusMessage ?? "",
    s?.message ?? `${method} ${path}: HTTP ${status}`,
    parsed,
  );
}

/** The whole body of an answer as text (events, not an async iterator: cheaper per answer). */
function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.once("end", () =>
      resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")),
    );
    res.once("error", reject);
    res.once("close", () => {
      if (!res.complete) reject(new Error("the answer was cut off"));
    });
  });
}

function transportError(method: string, path: string, err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const msg = errorMessage(err);
  return new ApiError(0, "TransportError", `${method} ${path}: ${msg}`);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}
