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
import type { RateLimiter } from "./ratelimit.ts";
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
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const contexts = new WeakMap<IncomingMessage, RequestContext>();

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The request's context; the first call sets X-Request-Id and observes the answer's end. */
export function requestContext(deps: RequestDeps, req: IncomingMessage, res: ServerResponse): RequestContext {
  let ctx = contexts.get(req);
  if (ctx) return ctx;
  const given = header(req, "x-request-id");
  ctx = { id: given && REQUEST_ID.test(given) ? given : randomUUID() };
  contexts.set(req, ctx);
  res.setHeader("x-request-id", ctx.id);
  const started = performance.now();
  const path = (req.url ?? "").split("?")[0] ?? "";
  const c = ctx;
  res.once("finish", () => {
    const seconds = (performance.now() - started) / 1000;
    const labels = { method: req.method ?? "", route: routeOf(path), status: String(res.statusCode) };
    deps.metrics.requests.inc(labels);
    deps.metrics.duration.observe(labels, seconds);
    // Writes and failures at info; successful reads (the bulk, and no change) at debug.
    // (winston formats a line before its transports drop it: ask first.)
    const read = (req.method === "GET" || req.method === "HEAD") && res.statusCode < 400;
    const level = read ? "debug" : "info";
    if (!deps.log.isLevelEnabled(level)) return;
    deps.log.log(level, "request", {
      requestId: c.id,
      method: req.method,
      route: labels.route,
      path,
      status: res.statusCode,
      ms: Math.round(seconds * 10000) / 10,
      user: c.identity?.user,
    });
  });
  return ctx;
}

/** The request's context, if it has one yet. */
export const contextOf = (req: IncomingMessage): RequestContext | undefined => contexts.get(req);

const retryAfter = (ms: number) => ({ "retry-after": String(Math.max(1, Math.ceil(ms / 1000))) });

/**
 * Admits the request once: the address's share of requests (before anything costs the
 * apiserver a review), the caller's identity, the caller's share. Throws the 401 or 429.
 */
export function admit(deps: RequestDeps, req: IncomingMessage, ctx: RequestContext, address: string) {
  ctx.admitted ??= (async () => {
    if (deps.addressLimiter) {
      const d = await deps.addressLimiter.take(`address:${address}`);
      if (!d.allowed) {
        deps.metrics.addressLimited.inc({ limit: "requests" });
        throw problemOf(429, `too many requests from ${address}; retry after the Retry-After seconds`, {
          headers: retryAfter(d.retryAfterMs),
        });
      }
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
    if (!decision.allowed) {
      deps.metrics.rateLimited.inc();
      throw problemOf(429, `rate limit exceeded for ${identity.user}; retry after the Retry-After seconds`, {
        headers: retryAfter(decision.retryAfterMs),
      });
    }
    return identity;
  })();
  return ctx.admitted;
}
