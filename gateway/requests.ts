// What every request goes through, once, whichever way it is then served (the Express app,
// or the fast path for cached reads, fastreads.ts): a request id (the client's
// X-Request-Id when it is a sane one), the metrics and the request log when the answer is
// finished, and admission: the client address's rate limit, authentication, the caller's
// rate limit. Both ways share one context per request, so nothing is counted or taken twice
// when the fast path hands a request over to the app.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../lib/log.ts";
import type { Authenticator } from "./auth/authenticate.ts";
import type { Identity } from "./auth/identity.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { problemOf } from "./problem.ts";
import type { RateDecision, RateLimiter } from "./ratelimit.ts";
import { routeOf } from "./routes/route.ts";

export interface RequestDeps {
  authenticate: Authenticator;
  limiter: RateLimiter;
  metrics: GatewayMetrics;
  log: Logger;
  /** Per client address, every /v1 request, before authentication (none when unset). */
  addressLimiter?: RateLimiter;
}

export interface RequestContext {
  id: string;
  /** Who the caller is, once admitted. */
  identity?: Identity;
  /** Admission, started once. */
  admitted?: Promise<Identity>;
  /** Why the fast path's cache did not answer (the app's cached-read route counts it). */
  cacheMiss?: string;
  /** The route template, when the code serving the request knows it (else routeOf the path). */
  route?: string;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const contexts = new WeakMap<IncomingMessage, Context>();

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

interface Context extends RequestContext {
  started: number;
  path: string;
  /** The answer's end is counted (a "finish" listener, or the caller said it is done). */
  observed: boolean;
}

/**
 * The request's context; the first call sets X-Request-Id. Unless `observe` is false, the
 * answer's end is counted and logged when it finishes. A caller that passes false (the fast
 * path) must call `answered` once it has sent the answer, or call this again without it.
 */
export function requestContext(
  deps: RequestDeps,
  req: IncomingMessage,
  res: ServerResponse,
  observe = true,
): RequestContext {
  let ctx = contexts.get(req);
  if (!ctx) {
    ctx = newContext(req);
    res.setHeader("x-request-id", ctx.id);
  }
  if (observe && !ctx.observed) {
    ctx.observed = true;
    const c = ctx;
    res.once("finish", () => record(deps, req, res, c));
  }
  return ctx;
}

/**
 * The request's new context, for a caller that sends the X-Request-Id header itself (the
 * fast path, in its one writeHead) and calls `answered` once it has sent the answer. Before
 * it hands the request to the app it must set the header (`res.setHeader("x-request-id",
 * ctx.id)`): the app's requestContext finds the context made and sets nothing.
 */
export const unsentContext = (req: IncomingMessage): RequestContext => newContext(req);

function newContext(req: IncomingMessage): Context {
  const given = header(req, "x-request-id");
  const url = req.url ?? "";
  const q = url.indexOf("?");
  const ctx: Context = {
    id: given && REQUEST_ID.test(given) ? given : randomUUID(),
    started: performance.now(),
    path: q < 0 ? url : url.slice(0, q),
    observed: false,
  };
  contexts.set(req, ctx);
  return ctx;
}

/** Counts and logs an answer sent in full by a caller that asked for its context with observe=false. */
export function answered(deps: RequestDeps, req: IncomingMessage, res: ServerResponse): void {
  const ctx = contexts.get(req);
  if (!ctx || ctx.observed) return;
  ctx.observed = true;
  record(deps, req, res, ctx);
}

function record(deps: RequestDeps, req: IncomingMessage, res: ServerResponse, c: Context): void {
  const seconds = (performance.now() - c.started) / 1000;
  const route = c.route ?? routeOf(c.path);
  deps.metrics.observeRequest(req.method ?? "", route, res.statusCode, seconds);
  // Writes and failures at info; successful reads (the bulk, and no change) at debug.
  // (winston formats a line before its transports drop it: ask first.)
  const read = (req.method === "GET" || req.method === "HEAD") && res.statusCode < 400;
  const level = read ? "debug" : "info";
  if (!deps.log.isLevelEnabled(level)) return;
  deps.log.log(level, "request", {
    requestId: c.id,
    method: req.method,
    route,
    path: c.path,
    status: res.statusCode,
    ms: Math.round(seconds * 10000) / 10,
    user: c.identity?.user,
  });
}

/** The request's context, if it has one yet. */
export const contextOf = (req: IncomingMessage): RequestContext | undefined => contexts.get(req);

const retryAfter = (ms: number) => ({ "retry-after": String(Math.max(1, Math.ceil(ms / 1000))) });

/** The 429 for a client address over its share, counted. */
function addressRefused(deps: RequestDeps, address: string, d: RateDecision) {
  deps.metrics.addressLimited.inc({ limit: "requests" });
  return problemOf(429, `too many requests from ${address}; retry after the Retry-After seconds`, {
    headers: retryAfter(d.retryAfterMs),
  });
}

/** The 429 for a caller over its share, counted. */
function callerRefused(deps: RequestDeps, identity: Identity, d: RateDecision) {
  deps.metrics.rateLimited.inc();
  return problemOf(429, `rate limit exceeded for ${identity.user}; retry after the Retry-After seconds`, {
    headers: retryAfter(d.retryAfterMs),
  });
}

/**
 * Admits the request once: the address's share of requests (before anything costs the
 * apiserver a review), the caller's identity, the caller's share. Throws the 401 or 429.
 */
export function admit(deps: RequestDeps, req: IncomingMessage, ctx: RequestContext, address: string) {
  ctx.admitted ??= (async () => {
    if (deps.addressLimiter) {
      const d = await deps.addressLimiter.take(`address:${address}`);
      if (!d.allowed) throw addressRefused(deps, address, d);
    }
    let identity: Identity;
    try {
      identity = await deps.authenticate(header(req, "authorization"), { address });
    } catch (err) {
      if ((err as { status?: number }).status === 429)
        deps.metrics.addressLimited.inc({ limit: "token_reviews" });
      throw err;
    }
    ctx.identity = identity;
    const decision = await deps.limiter.take(identity.user);
    if (!decision.allowed) throw callerRefused(deps, identity, decision);
    return identity;
  })();
  return ctx.admitted;
}

/**
 * Admission at once, when it needs no request: the limits kept in memory and a token the
 * gateway knows. Then the request is admitted (the identity) or refused (throws the 429)
 * here, with the same effects as `admit`, which answers the same from then on. Undefined
 * when admission has to wait (nothing is taken then: call `admit`), or was started already.
 */
export function admitNow(
  deps: RequestDeps,
  req: IncomingMessage,
  ctx: RequestContext,
  address: string,
): Identity | undefined {
  const { addressLimiter, limiter, authenticate } = deps;
  if (ctx.admitted || !limiter.takeNow || !authenticate.now || (addressLimiter && !addressLimiter.takeNow))
    return undefined;
  const identity = authenticate.now(header(req, "authorization"));
  if (!identity) return undefined;
  try {
    const d = addressLimiter?.takeNow?.(`address:${address}`);
    if (d && !d.allowed) throw addressRefused(deps, address, d);
    ctx.identity = identity;
    const decision = limiter.takeNow(identity.user);
    if (!decision.allowed) throw callerRefused(deps, identity, decision);
  } catch (err) {
    // admit gives the same refusal (a rejection handled here, awaited by whoever asks later).
    const refused = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    refused.catch(() => undefined);
    ctx.admitted = refused;
    throw err;
  }
  ctx.admitted = Promise.resolve(identity);
  return identity;
}
