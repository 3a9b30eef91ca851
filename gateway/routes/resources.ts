// REST routes of one kind, driven by its definition in api/v1alpha1: list (limit, continue,
// labelSelector), get (ETag), create, replace (If-Match), merge-patch, delete. Lists and gets
// are answered from the gateway's cache when a SubjectAccessReview allows the caller the
// read (cached.ts, before these routes), and otherwise here by the apiserver as the caller;
// every write is made as the
// caller (impersonation), so the apiserver's RBAC decides, and tells the cache its answer
// (the next read waits for the cache to hold it). Writes pass the webhook's admission rules
// (admit.ts) before they are audited and sent.
import { Router, type Request, type Response } from "express";
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import { ApiError, type KubeClient, type KubeList, type KubeObject } from "../../lib/kube/client.ts";
import type { Logger } from "../../lib/log.ts";
import type { AdmissionObject } from "../../lib/admission/index.ts";
import type { Identity } from "../auth/identity.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
import { admit, type AdmissionSettings } from "./admit.ts";
import type { Store, StoredResponse } from "../store/store.ts";
import {
  checkLabelSelector,
  CREATED_BY,
  clean,
  etagOf,
  preconditionOf,
  isObject,
  LAST_MODIFIED_BY,
  mergePatch,
  prepareObject,
  stamp,
  validate,
} from "./validate.ts";
import { auditedWrite } from "./write.ts";
import type { CachedReads } from "./cached.ts";

export interface ResourceDeps extends CachedReads {
  kube: KubeClient;
  store: Store;
  log: Logger;
  admission: AdmissionSettings;
}

export const asCaller = (kube: KubeClient, res: Response): KubeClient => {
  const who = res.locals.identity as Identity;
  return kube.withImpersonation({ user: who.user, groups: who.groups });
};

const MAX_LIMIT = 500;

/** Kinds with admission rules on DELETE (the webhook is registered for these DELETEs only). */
const DELETE_RULES = new Set(["SandboxFleet"]);

const CONTINUE = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * limit, continue and labelSelector of a list request's query (as the "simple" parser,
 * node:querystring, reads it), checked (400 naming the bad one).
 */
export function listQuery(q: Request["query"]): {
  limit?: number;
  continue?: string;
  labelSelector?: string;
} {
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw problemOf(400, `query parameter ${name} must be given once`);
    return v;
  };
  const limitText = one("limit");
  let limit: number | undefined;
  if (limitText !== undefined) {
    limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw problemOf(
        400,
        `query parameter limit must be an integer from 1 to ${MAX_LIMIT}, got "${limitText}"`,
      );
  }
  const token = one("continue");
  if (token !== undefined && (token.length > 4096 || !CONTINUE.test(token)))
    throw problemOf(
      400,
      "query parameter continue must be the metadata.continue of the previous page, as it was given",
    );
  const labelSelector = one("labelSelector");
  if (labelSelector !== undefined) checkLabelSelector(labelSelector);
  return {
    ...(limit !== undefined ? { limit } : {}),
    ...(token !== undefined ? { continue: token } : {}),
    ...(labelSelector !== undefined ? { labelSelector } : {}),
  };
}

/** A list answer: `<Kind>List` with cleaned items and the page's continue token. */
export function listBody(
  def: KindDefinition,
  list: KubeList<KubeObject>,
): KubeList<KubeObject> & { apiVersion: string; kind: string } {
  for (const item of list.items) {
    clean(item);
    item.apiVersion ??= def.apiVersion;
    item.kind ??= def.kind;
  }
  return {
    apiVersion: def.apiVersion,
    kind: `${def.kind}List`,
    metadata: {
      ...(list.metadata.resourceVersion ? { resourceVersion: list.metadata.resourceVersion } : {}),
      ...(list.metadata.continue ? { continue: list.metadata.continue } : {}),
      ...(list.metadata.continue && list.metadata.remainingItemCount !== undefined
        ? { remainingItemCount: list.metadata.remainingItemCount }
        : {}),
    },
    items: list.items,
  };
}

function objectResponse(status: number, obj: KubeObject, extra: Record<string, string> = {}): StoredResponse {
  const etag = etagOf(obj);
  return { status, body: clean(obj), headers: { ...(etag ? { etag } : {}), ...extra } };
}

/** Turns a 409 into 412 when the caller's If-Match precondition is what failed. */
function preconditioned(err: unknown, ifMatch: string | undefined): unknown {
  if (ifMatch && err instanceof ApiError && err.status === 409 && !/already exists/i.test(err.message))
    return problemOf(
      412,
      `the object changed since resourceVersion ${ifMatch} (If-Match); get it again and retry`,
    );
  return err;
}

export function resourceRouter(def: KindDefinition, deps: ResourceDeps): Router {
  const router = Router({ mergeParams: true });
  const { kube, admission } = deps;
  const av = def.apiVersion;
  const ref = (ns: string, name: string) => ({
    apiVersion: av,
    kind: def.kind,
    metadata: { namespace: ns, name },
  });
  const p = (req: Request) => req.params as { namespace: string; name: string };
  // What the rules see: the object with the schema's defaults, as the apiserver stores it.
  const withDefaults = (obj: KubeObject) => validate(def, obj) as AdmissionObject;
  const stored = (obj: KubeObject) => obj as unknown as AdmissionObject;

  const wrote = (obj: KubeObject) => deps.cache?.wrote(def.kind, obj);

  // Reached by the reads the cache did not answer (cached.ts), as the caller.
  router.get("/", async (req, res) => {
    const { namespace } = p(req);
    const list = await asCaller(kube, res).list<KubeObject>(av, def.kind, namespace, listQuery(req.query));
    res.json(listBody(def, list));
  });

  router.get("/:name", async (req, res) => {
    const { namespace, name } = p(req);
    const obj = await asCaller(kube, res).get<KubeObject>(av, def.kind, namespace, name);
    const etag = etagOf(obj);
    if (etag) res.setHeader("etag", etag);
    const since = preconditionOf(req.get("if-none-match"), "If-None-Match");
    if (since && since === obj.metadata.resourceVersion) return void res.status(304).end();
    res.json(clean(obj));
  });

  router.post("/", async (req, res) => {
    const { namespace } = p(req);
    const who = res.locals.identity as Identity;
    const obj = stamp(prepareObject(def, req.body, { namespace }), who.user, true);
    const client = asCaller(kube, res);
    await auditedWrite(
      deps,
      req,
      res,
      { verb: "create", kind: def.kind, namespace, name: obj.metadata.name },
      async () => {
        const created = await client.create(obj);
        wrote(created);
        const location = `${req.baseUrl}/${encodeURIComponent(created.metadata.name ?? "")}`;
        return objectResponse(201, created, { location });
      },
      () => admit(client, admission, res, def.kind, withDefaults(obj), undefined),
    );
  });

  router.put("/:name", async (req, res) => {
    const { namespace, name } = p(req);
    const who = res.locals.identity as Identity;
    const ifMatch = preconditionOf(req.get("if-match"), "If-Match");
    const obj = stamp(prepareObject(def, req.body, { namespace, name }), who.user, false);
    const client = asCaller(kube, res);
    let current: KubeObject | undefined;
    const check = async () => {
      current = await client.get<KubeObject>(av, def.kind, namespace, name);
      const candidate = withDefaults(obj);
      if (current.metadata.deletionTimestamp)
        candidate.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      await admit(client, admission, res, def.kind, candidate, stored(current));
    };
    const write = async (): Promise<StoredResponse> => {
      if (!current) throw new Error("the admission check did not run");
      // created-by stays what it was: a caller cannot rewrite who created the object.
      const createdBy = current.metadata.annotations?.[CREATED_BY];
      if (createdBy) obj.metadata.annotations = { ...obj.metadata.annotations, [CREATED_BY]: createdBy };
      else delete obj.metadata.annotations?.[CREATED_BY];
      obj.metadata.resourceVersion =
        ifMatch ?? obj.metadata.resourceVersion ?? current.metadata.resourceVersion;
      try {
        const replaced = await client.replace(obj);
        wrote(replaced);
        return objectResponse(200, replaced);
      } catch (err) {
        throw preconditioned(err, ifMatch);
      }
    };
    await auditedWrite(deps, req, res, { verb: "replace", kind: def.kind, namespace, name }, write, check);
  });

  router.patch("/:name", async (req, res) => {
    const { namespace, name } = p(req);
    const who = res.locals.identity as Identity;
    const ifMatch = preconditionOf(req.get("if-match"), "If-Match");
    if (!isObject(req.body)) throw problemOf(400, "a merge patch (RFC 7386) must be a JSON object");
    const patch = structuredClone(req.body);
    delete patch.status;
    const client = asCaller(kube, res);
    let current: KubeObject | undefined;
    const check = async () => {
      current = await client.get<KubeObject>(av, def.kind, namespace, name);
      if (ifMatch && ifMatch !== current.metadata.resourceVersion)
        throw problemOf(
          412,
          `the object is at resourceVersion ${current.metadata.resourceVersion}, not ${ifMatch} (If-Match); get it again and retry`,
        );
      const merged = mergePatch(current, patch) as KubeObject;
      delete merged.status;
      const meta = merged.metadata as Record<string, unknown> | undefined;
      if (meta?.name !== name || meta?.namespace !== namespace)
        throw problemOf(422, "metadata.name and metadata.namespace cannot be changed by a patch");
      if (merged.apiVersion !== av || merged.kind !== def.kind)
        throw problemOf(422, "apiVersion and kind cannot be changed by a patch");
      const candidate = validate(def, merged) as AdmissionObject;
      await admit(client, admission, res, def.kind, candidate, stored(current));
    };
    const write = async (): Promise<StoredResponse> => {
      if (!current) throw new Error("the admission check did not run");
      const meta2 = isObject(patch.metadata) ? patch.metadata : {};
      const annotations = isObject(meta2.annotations) ? { ...meta2.annotations } : {};
      delete annotations[CREATED_BY];
      const sent = {
        ...patch,
        metadata: {
          ...meta2,
          resourceVersion: current.metadata.resourceVersion,
          annotations: { ...annotations, [LAST_MODIFIED_BY]: who.user },
        },
      };
      try {
        const patched = await client.mergePatch<KubeObject>(ref(namespace, name), sent);
        wrote(patched);
        return objectResponse(200, patched);
      } catch (err) {
        throw preconditioned(err, ifMatch);
      }
    };
    await auditedWrite(deps, req, res, { verb: "patch", kind: def.kind, namespace, name }, write, check);
  });

  router.delete("/:name", async (req, res) => {
    const { namespace, name } = p(req);
    const ifMatch = preconditionOf(req.get("if-match"), "If-Match");
    const client = asCaller(kube, res);
    const check = async () => {
      if (!DELETE_RULES.has(def.kind)) return;
      const current = await client.get<KubeObject>(av, def.kind, namespace, name);
      await admit(client, admission, res, def.kind, undefined, stored(current));
    };
    const remove = async (): Promise<StoredResponse> => {
      const body = {
        apiVersion: "v1",
        kind: "DeleteOptions",
        propagationPolicy: "Background",
        ...(ifMatch ? { preconditions: { resourceVersion: ifMatch } } : {}),
      };
      try {
        const out = await client.request<KubeObject>("DELETE", client.pathOf(ref(namespace, name)), { body });
        deps.cache?.deleted(def.kind, namespace, name, out ?? {});
        return out?.metadata ? objectResponse(200, out) : { status: 200, body: out ?? {}, headers: {} };
      } catch (err) {
        throw preconditioned(err, ifMatch);
      }
    };
    await auditedWrite(deps, req, res, { verb: "delete", kind: def.kind, namespace, name }, remove, check);
  });

  const statusReadOnly = () => {
    throw problemOf(405, "status is read-only through the gateway; the operator writes it", {
      headers: { allow: "GET" },
    });
  };
  router.get("/:name/status", async (req, res) => {
    const { namespace, name } = p(req);
    const obj = await asCaller(kube, res).get<KubeObject>(av, def.kind, namespace, name);
    res.json({ status: obj.status ?? {} });
  });
  router.all("/:name/status", statusReadOnly);
  router.all("/", methodNotAllowed(["GET", "POST"]));
  router.all("/:name", methodNotAllowed(["GET", "PUT", "PATCH", "DELETE"]));
  return router;
}
