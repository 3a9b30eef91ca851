// Kubernetes Events of a namespace, for dashboards (the console's overview, an object's
// page): GET /v1/namespaces/{ns}/events[?kind=&name=&type=&limit=], read from the apiserver
// as the caller (the built-in view role lets a namespace's viewers list events), newest
// first, in a small shape of our own rather than core/v1 Event's two generations of fields.
import { Router, type Request } from "express";
import { queryOne } from "../dataplane/common.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
import { asCaller, type ResourceDeps } from "./resources.ts";

export const EVENT_KIND_PATTERN = "^[A-Z][A-Za-z0-9]{0,62}$";
export const EVENT_NAME_PATTERN = "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";
export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 500;

/** One Event as the gateway answers it. */
export interface EventSummary {
  type: string;
  reason: string;
  message: string;
  count: number;
  /** When it was last seen (RFC 3339), or first seen if that is all there is. */
  lastTime: string | null;
  object: { kind: string; name: string };
  /** The component that reported it (agentry-operator, kubelet ...). */
  source: string;
}

interface CoreEvent extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  involvedObject?: { kind?: string; name?: string };
  source?: { component?: string };
  reportingComponent?: string;
}

export function summarise(e: CoreEvent): EventSummary {
  return {
    type: e.type ?? "Normal",
    reason: e.reason ?? "",
    message: e.message ?? "",
    count: e.series?.count ?? e.count ?? 1,
    lastTime:
      e.series?.lastObservedTime ??
      e.lastTimestamp ??
      e.eventTime ??
      e.firstTimestamp ??
      e.metadata.creationTimestamp ??
      null,
    object: { kind: e.involvedObject?.kind ?? "", name: e.involvedObject?.name ?? "" },
    source: e.reportingComponent || e.source?.component || "",
  };
}

const KIND = new RegExp(EVENT_KIND_PATTERN);
const NAME = new RegExp(EVENT_NAME_PATTERN);
const TYPE = /^(Normal|Warning)$/;
const LIMIT = /^[1-9][0-9]{0,2}$/;

/** A query parameter given at most once (queryOne) that must match `pattern`. */
function one(req: Request, name: string, pattern: RegExp): string | undefined {
  const v = queryOne(req, name);
  if (v !== undefined && !pattern.test(v)) throw problemOf(400, `query parameter ${name} is not valid`);
  return v;
}

export function eventsRouter(deps: Pick<ResourceDeps, "kube">): Router {
  const router = Router({ mergeParams: true });
  router.get("/", async (req, res) => {
    const namespace = String((req.params as Record<string, string>).namespace);
    const kind = one(req, "kind", KIND);
    const name = one(req, "name", NAME);
    const type = one(req, "type", TYPE);
    const limitText = one(req, "limit", LIMIT);
    const limit = limitText === undefined ? EVENTS_DEFAULT_LIMIT : Number(limitText);
    if (limit > EVENTS_MAX_LIMIT)
      throw problemOf(400, `query parameter limit must be at most ${EVENTS_MAX_LIMIT}`);
    const fields = [
      ...(kind ? [`involvedObject.kind=${kind}`] : []),
      ...(name ? [`involvedObject.name=${name}`] : []),
      ...(type ? [`type=${type}`] : []),
    ];
    // The apiserver cannot sort; a namespace's events are few (they expire after an hour).
    const list = await asCaller(deps.kube, res).list<CoreEvent>("v1", "Event", namespace, {
      ...(fields.length ? { fieldSelector: fields.join(",") } : {}),
    });
    const items = list.items
      .map(summarise)
      .sort((a, b) => (b.lastTime ?? "").localeCompare(a.lastTime ?? ""))
      .slice(0, limit);
    res.json({ items });
  });
  router.all("/", methodNotAllowed(["GET"]));
  return router;
}
