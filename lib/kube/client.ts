// One small Kubernetes REST client shared by the operator, webhook and gateway: the
// KubeConfig's authentication from @kubernetes/client-node, requests through undici,
// a client-side QPS/burst limit, server-side apply with the single field manager
// `agentry`, and errors that keep the apiserver's status, reason and message.
import type { ObjectMeta } from "../../api/v1alpha1/index.ts";
import type { HttpMethod } from "@kubernetes/client-node";
import { RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { fetch } from "undici";
import { resourceFor, resourcePath } from "./resources.ts";
import { errorMessage } from "../log.ts";

export const FIELD_MANAGER = "agentry";

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
}

/**
 * The reads and writes controllers make through a client: what their unit tests record
 * (test/harness/fakekube.ts) and the operator does with a KubeClient.
 */
export type KubeApi = Pick<KubeClient, "get" | "list" | "create" | "apply" | "mergePatch" | "delete">;

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly server: string;
  private readonly limiter: TokenBucket;
  private readonly userAgent: string;
  private readonly onRequest: RequestObserver | undefined;
  private impersonation: Impersonation | undefined;
  /**
   * client-node builds a new undici Agent (so a new TLS connection and handshake) for every
   * request; with static credentials the first one is kept and its connections reused.
   */
  private readonly reuseDispatcher: boolean;
  private readonly dispatcher: { current?: unknown } = {};

  constructor(kc: KubeConfig, options: ClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.kubeConfig = kc;
    this.server = cluster.server.replace(/\/$/, "");
    this.limiter = new TokenBucket(options.qps ?? 200, options.burst ?? 400);
    this.userAgent = options.userAgent ?? "agentry";
    this.onRequest = options.onRequest;
    // Exec plugins and auth providers may rotate client certificates: keep a fresh Agent there.
    // The in-cluster config's `tokenFile` provider only sets the (re-read) bearer header, so
    // its Agent is reused: a Pod would otherwise open a TLS connection per request.
    const user = kc.getCurrentUser();
    this.reuseDispatcher =
      !user?.exec && (!user?.authProvider || (user.authProvider as { name?: string }).name === "tokenFile");
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

  private dispatcherFor(ctx: RequestContext): unknown {
    if (!this.reuseDispatcher) return ctx.getDispatcher();
    // One holder object, shared with the clients withImpersonation derives from this one.
    this.dispatcher.current ??= ctx.getDispatcher();
    return this.dispatcher.current;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const started = performance.now();
    let status = 0;
    try {
      const res = await this.send(method, path, options, options.signal ?? AbortSignal.timeout(30_000));
      status = res.status;
      const text = await res.text();
      const parsed: unknown = text ? safeJson(text) : undefined;
      if (res.status >= 400) throw apiError(method, path, res, parsed);
      return parsed as T;
    } catch (err) {
      throw transportError(method, path, err);
    } finally {
      this.onRequest?.(method, path, status, (performance.now() - started) / 1000);
    }
  }

  /**
   * A request whose successful answer is read as it arrives (pod logs, watches): the
   * Response, its body unread; an error answer is read and thrown as an ApiError. No
   * timeout of its own: `signal` ends it.
   */
  async stream(method: string, path: string, options: RequestOptions = {}): Promise<globalThis.Response> {
    const started = performance.now();
    let status = 0;
    try {
      const res = await this.send(method, path, options, options.signal);
      status = res.status;
      if (res.status >= 400) {
        const text = await res.text();
        throw apiError(method, path, res, text ? safeJson(text) : undefined);
      }
      return res;
    } catch (err) {
      throw transportError(method, path, err);
    } finally {
      this.onRequest?.(method, path, status, (performance.now() - started) / 1000);
    }
  }

  private async send(method: string, path: string, options: RequestOptions, signal: AbortSignal | undefined) {
    const wait = this.limiter.reserve();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = {
      ...ctx.getHeaders(),
      accept: options.accept ?? "application/json",
      "user-agent": this.userAgent,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] = options.contentType ?? "application/json";
    }
    const sent = this.impersonation ? impersonationHeaders(headers, this.impersonation) : headers;
    return fetch(url, {
      method,
      headers: sent,
      body,
      dispatcher: this.dispatcherFor(ctx) as never,
      ...(signal ? { signal } : {}),
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

/** Headers as pairs, since Impersonate-Group repeats once per group. */
export function impersonationHeaders(
  headers: Record<string, string>,
  who: Impersonation,
): [string, string][] {
  const pairs = Object.entries(headers);
  pairs.push(["impersonate-user", who.user]);
  for (const g of who.groups ?? []) pairs.push(["impersonate-group", g]);
  return pairs;
}

function apiError(
  method: string,
  path: string,
  res: { status: number; statusText: string },
  parsed: unknown,
) {
  const s = parsed as { reason?: string; message?: string } | undefined;
  return new ApiError(
    res.status,
    s?.reason ?? res.statusText,
    s?.message ?? `${method} ${path}: HTTP ${res.status}`,
    parsed,
  );
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
