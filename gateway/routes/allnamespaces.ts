// GET /v1/{plural}: one kind across every namespace the caller may list it in, for
// dashboards. A caller who may list cluster-wide gets the apiserver's own cluster-wide list
// (as the caller). Anyone else gets the namespaces where a SubjectAccessReview says they may
// list the kind (the gateway reads the namespace names with its own ServiceAccount; the
// objects are still read as the caller), in name order, paged with a continue token of the
// gateway's own that names the namespace and the apiserver's token within it. Both are
// answered from the gateway's cache when it can (the same reviews decide; the namespaces
// looked at are those holding objects of the kind), with tokens the apiserver path takes too.
import { Router } from "express";
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import { ApiError, type KubeList, type KubeObject } from "../../lib/kube/client.ts";
import type { AccessReview } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import { jsonArray } from "../cache/objects.ts";
import { listJson, type ListQuery, type ReadCache } from "../cache/readcache.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
import { countRead, sendJson } from "./cached.ts";
import { asCaller, listBody, listQuery, type ResourceDeps } from "./resources.ts";

/** The gateway's continue token across namespaces: where to go on. */
interface FanOutToken {
  /** Namespace to go on in. */
  ns: string;
  /** The apiserver's continue token within it, if the page ended inside it. */
  c?: string;
}

const MARK = "agentry-ns:";

export function encodeToken(t: FanOutToken): string {
  return Buffer.from(MARK + JSON.stringify(t)).toString("base64url");
}

/** The gateway's token, undefined for anything else (an apiserver token). */
export function decodeToken(text: string): FanOutToken | undefined {
  const raw = Buffer.from(text, "base64url").toString("utf8");
  if (!raw.startsWith(MARK)) return undefined;
  try {
    const t = JSON.parse(raw.slice(MARK.length)) as Partial<FanOutToken>;
    if (typeof t.ns === "string" && (t.c === undefined || typeof t.c === "string")) return t as FanOutToken;
  } catch {
    // falls through to the 400 below
  }
  throw problemOf(400, "query parameter continue is not a continue token this gateway gave");
}

/** At most this many SubjectAccessReviews in flight for one request. */
const REVIEW_CONCURRENCY = 16;

/** The namespaces of `names` where `who` may list `plural`, in the same order. */
async function listable(review: AccessReview, who: Identity, plural: string, names: string[]) {
  const allowed: string[] = [];
  for (let i = 0; i < names.length; i += REVIEW_CONCURRENCY) {
    const batch = names.slice(i, i + REVIEW_CONCURRENCY);
    const answers = await Promise.all(
      batch.map((ns) => review(who, { verb: "list", resource: plural, namespace: ns })),
    );
    batch.forEach((ns, j) => answers[j]!.allowed && allowed.push(ns));
  }
  return allowed;
}

/**
 * The fan-out answered from the cache: the namespaces holding objects of the kind where the
 * caller may list it; undefined when the apiserver path must answer (a namespace's page the
 * cache cannot give, or no namespace allowed: only the apiserver's namespace list can tell a
 * 403 from an empty list then).
 */
async function fanOutFromCache(
  cache: ReadCache,
  review: AccessReview,
  who: Identity,
  def: KindDefinition,
  query: ListQuery,
  fanOut: FanOutToken | undefined,
): Promise<{ body: Buffer } | { reason: string }> {
  const names = cache.namespaces(def.kind).filter((n) => !fanOut || n >= fanOut.ns);
  const allowed = await listable(review, who, def.plural, names);
  if (allowed.length === 0 && !fanOut) return { reason: "denied" };
  const items: Buffer[] = [];
  let count = 0;
  let next: FanOutToken | undefined;
  for (const ns of allowed) {
    const remaining = query.limit === undefined ? undefined : query.limit - count;
    if (remaining === 0) {
      next = { ns };
      break;
    }
    const c = fanOut && ns === fanOut.ns ? fanOut.c : undefined;
    const page = await cache.page(def, ns, {
      ...(remaining !== undefined ? { limit: remaining } : {}),
      ...(c ? { continue: c } : {}),
      ...(query.labelSelector !== undefined ? { labelSelector: query.labelSelector } : {}),
    });
    if (!page.ok) return { reason: page.reason };
    // Each page is a JSON array: its inside joins the others'.
    if (page.items.length > 2) items.push(page.items.subarray(1, -1));
    count += page.count;
    if (page.continue) {
      next = { ns, c: page.continue };
      break;
    }
  }
  return { body: listJson(def, next ? { continue: encodeToken(next) } : {}, jsonArray(items)) };
}

export function allNamespacesRouter(defs: readonly KindDefinition[], deps: ResourceDeps): Router {
  const router = Router();
  const { kube } = deps;
  for (const def of defs) {
    router.get(`/${def.plural}`, async (req, res) => {
      const query = listQuery(req.query);
      const who = res.locals.identity as Identity;
      const caller = asCaller(kube, res);
      const fanOut = query.continue !== undefined ? decodeToken(query.continue) : undefined;
      if (!fanOut) {
        const cluster = await deps.review(who, { verb: "list", resource: def.plural, namespace: "" });
        if (cluster.allowed) {
          const hit = deps.cache ? await deps.cache.list(def, undefined, query) : undefined;
          countRead(deps, def.kind, "list", hit ?? { ok: false, reason: "off" });
          if (hit?.ok) return sendJson(res, hit.body);
          const list = await caller.list<KubeObject>(def.apiVersion, def.kind, undefined, query);
          return void res.json(listBody(def, list));
        }
      }
      if (deps.cache) {
        const r = await fanOutFromCache(deps.cache, deps.review, who, def, query, fanOut);
        countRead(deps, def.kind, "list", "body" in r ? { ok: true } : { ok: false, reason: r.reason });
        if ("body" in r) return sendJson(res, r.body);
      } else countRead(deps, def.kind, "list", { ok: false, reason: "off" });
      // The namespaces where the caller may list the kind, in name order.
      const all = await kube.list<KubeObject>("v1", "Namespace");
      const names = all.items
        .map((n) => n.metadata.name ?? "")
        .filter((n) => n && (!fanOut || n >= fanOut.ns))
        .sort();
      const allowed = await listable(deps.review, who, def.plural, names);
      if (allowed.length === 0 && !fanOut)
        throw problemOf(403, `${who.user} may not list ${def.plural} in any namespace`);
      const items: KubeObject[] = [];
      let next: FanOutToken | undefined;
      for (const ns of allowed) {
        const remaining = query.limit === undefined ? undefined : query.limit - items.length;
        if (remaining === 0) {
          next = { ns };
          break;
        }
        const c = fanOut && ns === fanOut.ns ? fanOut.c : undefined;
        let page: KubeList<KubeObject>;
        try {
          page = await caller.list<KubeObject>(def.apiVersion, def.kind, ns, {
            ...(remaining !== undefined ? { limit: remaining } : {}),
            ...(c ? { continue: c } : {}),
            ...(query.labelSelector !== undefined ? { labelSelector: query.labelSelector } : {}),
          });
        } catch (err) {
          // Access changed, or the namespace went away, since the review: leave it out.
          if (err instanceof ApiError && (err.status === 403 || err.status === 404)) continue;
          throw err;
        }
        items.push(...page.items);
        if (page.metadata.continue) {
          next = { ns, c: page.metadata.continue };
          break;
        }
      }
      res.json(listBody(def, { items, metadata: next ? { continue: encodeToken(next) } : {} }));
    });
  }
  for (const def of defs) router.all(`/${def.plural}`, methodNotAllowed(["GET"]));
  return router;
}
