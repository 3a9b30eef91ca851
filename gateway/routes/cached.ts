// Reads answered from the gateway's cache: the caller must be allowed the read by a
// SubjectAccessReview (remembered briefly, auth/access.ts), then the cache answers if it
// can. Whenever either says no, the request goes on to the kind's routes, which ask the
// apiserver as the caller, as they did before the cache: the same answer, 403 and 404
// included, only slower. Every read is counted once by where its answer came from
// (agentry_gateway_reads_total).
//
// Two ways in, one behaviour: `fastReads` takes the plain GETs of a namespace's list or of
// one object straight from the HTTP server, before Express (admitted by the same code,
// requests.ts), and hands everything else, a miss included, to the app; in the app
// `cachedReadRouter`, placed before all other routes, serves the rest (HEAD, If-None-Match,
// names the fast path does not read) and counts the misses the fast path handed over.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { parse } from "node:querystring";
import { Router, type Response } from "express";
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import type { AccessAnswer, AccessQuestion, AccessReview } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import type { ReadCache, Served } from "../cache/readcache.ts";
import type { GatewayMetrics } from "../metrics.ts";
import {
  admit,
  admitNow,
  answered,
  contextOf,
  unsentContext,
  type RequestContext,
  type RequestDeps,
} from "../requests.ts";
import { listQuery } from "./resources.ts";
import { routeOf } from "./route.ts";
import { preconditionOf } from "./validate.ts";

export interface CachedReads {
  cache: ReadCache | undefined;
  review: AccessReview;
  metrics: GatewayMetrics;
}

type Answer = { ok: true } | { ok: false; reason: string };
type Hit = { body: Buffer; etag?: string };

/** Counts a read: from the cache, or from the apiserver and why. */
export function countRead(deps: CachedReads, kind: string, verb: string, answer: Answer): void {
  if (answer.ok) deps.metrics.countRead(kind, verb, "cache", "");
  else deps.metrics.countRead(kind, verb, "apiserver", answer.reason);
}

/** The cache's answer for `who`, if the review allows the read (not counted). */
async function answer<T>(
  deps: CachedReads,
  who: Identity,
  q: AccessQuestion,
  serve: (cache: ReadCache) => Promise<Served<T>>,
): Promise<Served<T> | { ok: false; reason: string }> {
  if (!deps.cache) return { ok: false, reason: "off" };
  if (!(await deps.review(who, q)).allowed) return { ok: false, reason: "denied" };
  return serve(deps.cache);
}

/** The access question of a list (no name) or a get of one object of `def` in a namespace. */
const questionOf = (def: KindDefinition, namespace: string, name: string | undefined): AccessQuestion =>
  name === undefined
    ? { verb: "list", resource: def.plural, namespace }
    : { verb: "get", resource: def.plural, namespace, name };

/** The list or get a request path names, answered from the cache. */
function read(
  deps: CachedReads,
  who: Identity,
  def: KindDefinition,
  namespace: string,
  name: string | undefined,
  query: () => ReturnType<typeof listQuery>,
): Promise<Served<Hit> | { ok: false; reason: string }> {
  const q = questionOf(def, namespace, name);
  if (name === undefined) {
    const lq = query();
    return answer(deps, who, q, (c) => c.list(def, namespace, lq));
  }
  return answer(deps, who, q, (c) => c.get(def, namespace, name));
}

/** Sends JSON bytes built by the cache, with the headers res.json would give them. */
export function sendJson(res: Response, body: Buffer): void {
  res.set("content-type", "application/json; charset=utf-8").send(body);
}

/** GET of a list or of one object of `defs` in a namespace, from the cache; else next(). */
export function cachedReadRouter(defs: readonly KindDefinition[], deps: CachedReads): Router {
  const router = Router();
  const kinds = new Map(defs.map((d) => [d.plural, d]));
  // A middleware, not a GET route: a route here would make the router answer OPTIONS itself
  // (200, Allow: GET, HEAD) before the resource routes' 405 with their own Allow.
  router.use("/namespaces/:namespace/:plural{/:name}", async (req, res, next) => {
    if ((req.method !== "GET" && req.method !== "HEAD") || req.path !== "/") return next();
    const { namespace, plural, name } = req.params;
    const def = kinds.get(plural);
    if (!def) return next();
    const verb = name === undefined ? "list" : "get";
    const ctx = contextOf(req);
    const missed = ctx?.cacheMiss;
    if (missed !== undefined) {
      // The fast path asked already: the apiserver answers.
      countRead(deps, def.kind, verb, { ok: false, reason: missed });
      return next();
    }
    const who = res.locals.identity as Identity;
    const got = await read(deps, who, def, namespace, name, () => listQuery(req.query));
    countRead(deps, def.kind, verb, got);
    if (!got.ok) return next();
    if (got.etag) {
      res.setHeader("etag", got.etag);
      const since = preconditionOf(req.get("if-none-match"), "If-None-Match");
      if (since && `"${since}"` === got.etag) return void res.status(304).end();
    }
    sendJson(res, got.body);
  });
  return router;
}

const KINDS_PATTERN = "(agentruntimes|pipelines|sandboxfleets|workspaces)";
/** /v1/namespaces/{namespace}/{plural}[/{name}][?query], names as checkPathNames takes them. */
const FAST = new RegExp(
  `^/v1/namespaces/([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)/${KINDS_PATTERN}(?:/([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?))?(?:\\?(.*))?$`,
);

export interface FastReadDeps extends RequestDeps, CachedReads {
  /** The remembered answer to an access question, or undefined when it takes a review. */
  reviewNow?: (who: Identity, q: AccessQuestion) => AccessAnswer | undefined;
}

/** What FAST matched: the path, namespace, plural, name (a get) and query. */
type Match = [string, string, string, string | undefined, string | undefined];

const JSON_TYPE = "application/json; charset=utf-8";
/** Route templates (metric labels) of the fast path's reads, as routeOf names them: `plural` for a list, `plural/` for a get. */
const routesOf = (defs: readonly KindDefinition[]) =>
  new Map(
    defs.flatMap((d) => [
      [d.plural, routeOf(`/v1/namespaces/ns/${d.plural}`)],
      [`${d.plural}/`, routeOf(`/v1/namespaces/ns/${d.plural}/name`)],
    ]),
  );
/**
 * The HTTP server's handler: plain GETs of a list or an object the cache answers are served
 * here; every other request, and every read the cache does not answer, goes to `app`.
 * Only for a gateway that takes the connection's peer as the client (no trusted proxies).
 */
export function fastReads(app: RequestListener, defs: readonly KindDefinition[], deps: FastReadDeps) {
  const kinds = new Map(defs.map((d) => [d.plural, d]));
  const routes = routesOf(defs);
  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RequestContext,
    def: KindDefinition,
    name: string | undefined,
    got: Hit,
  ) => {
    countRead(deps, def.kind, name === undefined ? "list" : "get", { ok: true });
    ctx.route = routes.get(name === undefined ? def.plural : `${def.plural}/`);
    // One writeHead of every header (none set before): Node's quick way to the wire.
    res.writeHead(
      200,
      got.etag
        ? {
            "x-request-id": ctx.id,
            "content-type": JSON_TYPE,
            "content-length": got.body.length,
            etag: got.etag,
          }
        : { "x-request-id": ctx.id, "content-type": JSON_TYPE, "content-length": got.body.length },
    );
    res.end(got.body);
    answered(deps, req, res);
  };
  // Everything known at once (the usual case: limits in memory, a known token, a remembered
  // access answer, a cache that holds the gateway's writes): answered without waiting. True
  // when answered; false when handed to the app; undefined when something must be waited for.
  const serveNow = (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RequestContext,
    m: Match,
  ): boolean | undefined => {
    const { cache, reviewNow } = deps;
    if (!cache || !reviewNow) return undefined;
    const who = admitNow(deps, req, ctx, req.socket.remoteAddress ?? "unknown");
    if (!who) return undefined;
    const [, namespace, plural, name, search] = m;
    const def = kinds.get(plural)!;
    const allowed = reviewNow(who, questionOf(def, namespace, name));
    if (!allowed) return undefined;
    const got = !allowed.allowed
      ? ({ ok: false, reason: "denied" } as const)
      : name === undefined
        ? cache.listNow(def, namespace, listQuery(parse(search ?? "")))
        : cache.getNow(def, namespace, name);
    if (!got) return undefined;
    if (!got.ok) {
      ctx.cacheMiss = got.reason;
      return false;
    }
    send(req, res, ctx, def, name, got);
    return true;
  };
  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RequestContext,
    m: Match,
  ): Promise<boolean> => {
    const who = await admit(deps, req, ctx, req.socket.remoteAddress ?? "unknown");
    const [, namespace, plural, name, search] = m;
    const def = kinds.get(plural)!;
    const got = await read(deps, who, def, namespace, name, () => listQuery(parse(search ?? "")));
    if (!got.ok) {
      ctx.cacheMiss = got.reason;
      return false;
    }
    send(req, res, ctx, def, name, got);
    return true;
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    const m = req.method === "GET" && req.headers["if-none-match"] === undefined && FAST.exec(req.url ?? "");
    if (!m) return void app(req, res);
    // Counted when the answer is sent (send), or by the app when it serves the request.
    const ctx = unsentContext(req);
    const toApp = () => {
      res.setHeader("x-request-id", ctx.id);
      app(req, res);
    };
    // A refusal (401, 429, a bad query) is the app's to answer: admission is remembered.
    let now: boolean | undefined;
    try {
      now = serveNow(req, res, ctx, m as unknown as Match);
    } catch {
      now = false;
    }
    if (now === true) return;
    if (now === false) return toApp();
    serve(req, res, ctx, m as unknown as Match).then(
      (done) => done || toApp(),
      () => toApp(),
    );
  };
}
