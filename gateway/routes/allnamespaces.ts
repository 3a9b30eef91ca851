// GET /v1/{plural}: one kind across every namespace the caller may list it in, for
// dashboards. A caller who may list cluster-wide gets the apiserver's own cluster-wide list
// (as the caller). Anyone else gets the namespaces where a SubjectAccessReview says they may
// list the kind (the gateway reads the namespace names with its own ServiceAccount; the
// objects are still read as the caller), in name order, paged with a continue token of the
// gateway's own that names the namespace and the apiserver's token within it.
import { Router } from "express";
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import { ApiError, type KubeList, type KubeObject } from "../../lib/kube/client.ts";
import type { AccessReviewer } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
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

export function allNamespacesRouter(
  defs: readonly KindDefinition[],
  deps: ResourceDeps & { review: AccessReviewer },
): Router {
  const router = Router();
  const { kube } = deps;
  for (const def of defs) {
    router.get(`/${def.plural}`, async (req, res) => {
      const query = listQuery(req);
      const who = res.locals.identity as Identity;
      const caller = asCaller(kube, res);
      const fanOut = query.continue !== undefined ? decodeToken(query.continue) : undefined;
      if (!fanOut) {
        const cluster = await deps.review(who, { verb: "list", resource: def.plural, namespace: "" });
        if (cluster.allowed) {
          const list = await caller.list<KubeObject>(def.apiVersion, def.kind, undefined, query);
          return void res.json(listBody(def, list));
        }
      }
      // The namespaces where the caller may list the kind, in name order.
      const all = await kube.list<KubeObject>("v1", "Namespace");
      const names = all.items
        .map((n) => n.metadata.name ?? "")
        .filter((n) => n && (!fanOut || n >= fanOut.ns))
        .sort();
      const allowed: string[] = [];
      for (let i = 0; i < names.length; i += REVIEW_CONCURRENCY) {
        const batch = names.slice(i, i + REVIEW_CONCURRENCY);
        const answers = await Promise.all(
          batch.map((ns) => deps.review(who, { verb: "list", resource: def.plural, namespace: ns })),
        );
        batch.forEach((ns, j) => answers[j]!.allowed && allowed.push(ns));
      }
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
