// What the operator's caches keep of the objects it makes (an informer `transform`): the
// fields its controllers read, nothing else. A cached Pod is its identity, owners, agentry
// annotations and the status fields that readiness is computed from (~1 KiB instead of
// ~6 KiB); a Service, NetworkPolicy, claim or ConfigMap is its metadata (what is applied is
// compared by the spec-hash annotation, never field by field).
import type { ObjectMeta } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "./client.ts";

/** Annotations of this prefix are agentry's own (ids, hashes, requests): the only ones kept. */
const AGENTRY_PREFIX = "agentry.dev/";

/** An informer `transform`: the raw object in, what the cache keeps (typed as its readers read it) out. */
export type Projection<T extends KubeObject = KubeObject> = (obj: KubeObject) => T;

/** A condition as cached (Job, Pod). */
export interface ConditionView {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** A Pod as cached: what an agent's status reads (podView). */
export interface CachedPod extends KubeObject {
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    podIP?: string;
    reason?: string;
    message?: string;
    conditions?: ConditionView[];
    containerStatuses?: {
      name: string;
      ready?: boolean;
      restartCount?: number;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { reason?: string; message?: string; exitCode?: number };
        running?: unknown;
      };
      lastState?: { terminated?: { reason?: string; message?: string; exitCode?: number } };
    }[];
  };
}

/** A Job as cached: what a Pipeline's status reads (jobView). */
export interface CachedJob extends KubeObject {
  spec?: { activeDeadlineSeconds?: number };
  status?: {
    startTime?: string;
    completionTime?: string;
    active?: number;
    succeeded?: number;
    failed?: number;
    conditions?: ConditionView[];
  };
}

/** A CronJob as cached: when it last ran and last succeeded (cronJobView). */
export interface CachedCronJob extends KubeObject {
  status: { lastScheduleTime?: string; lastSuccessfulTime?: string; active?: unknown[] };
}

/**
 * `o` without its undefined fields, as a new object: a `delete` would turn each cached object
 * into a dictionary-mode object, some 800 bytes of property table instead of ~100 (V8).
 */
function defined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** The metadata controllers read: identity, version, labels, agentry annotations, owners, deletion. */
/** A Pod's Ready condition is True. */
export const podReady = (p: { status?: { conditions?: { type: string; status: string }[] } }): boolean =>
  p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export function metadataView(m: ObjectMeta): ObjectMeta {
  let annotations: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(m.annotations ?? {}))
    if (k.startsWith(AGENTRY_PREFIX)) (annotations ??= {})[k] = v;
  return defined({
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    deletionTimestamp: m.deletionTimestamp,
    labels: m.labels,
    annotations,
    ownerReferences: m.ownerReferences?.map((r) =>
      defined({ apiVersion: r.apiVersion, kind: r.kind, name: r.name, uid: r.uid, controller: r.controller }),
    ),
  });
}

/** Only the metadata (Services, NetworkPolicies, claims, ConfigMaps the operator applies). */
export const metadataOnly: Projection = (o) => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  metadata: metadataView(o.metadata),
});

type Raw = Record<string, unknown> | undefined;
const pick = (o: Raw, keys: readonly string[]): Record<string, unknown> | undefined => {
  if (!o) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
};
const CONDITION = ["type", "status", "reason", "message", "lastTransitionTime"] as const;
const conditions = (list: unknown) => (list as Raw[] | undefined)?.map((c) => pick(c, CONDITION));

/** A Pod as an agent's status reads it: node, phase, conditions, container states, IP. */
export const podView: Projection<CachedPod> = (o) => {
  const status = o["status"] as Raw;
  const spec = o["spec"] as Raw;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataView(o.metadata),
    spec: defined({ nodeName: spec?.["nodeName"] as string | undefined }),
    // The one place a Pod's raw status becomes the typed view (the apiserver's schema).
    status: defined({
      ...pick(status, ["phase", "reason", "message", "podIP"]),
      conditions: conditions(status?.["conditions"]),
      containerStatuses: (status?.["containerStatuses"] as Raw[] | undefined)?.map((c) =>
        defined({
          ...pick(c, ["name", "ready", "restartCount", "state"]),
          lastState: pick(c?.["lastState"] as Raw, ["terminated"]),
        }),
      ),
    }) as CachedPod["status"],
  };
};

/** A Job as a Pipeline's status reads it: its deadline, run times, counts and conditions. */
export const jobView: Projection<CachedJob> = (o) => {
  const status = o["status"] as Raw;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: metadataView(o.metadata),
    spec: defined({
      activeDeadlineSeconds: (o["spec"] as Raw)?.["activeDeadlineSeconds"] as number | undefined,
    }),
    // The one place a Job's raw status becomes the typed view (the apiserver's schema).
    status: defined({
      ...pick(status, ["startTime", "completionTime", "active", "succeeded", "failed"]),
      conditions: conditions(status?.["conditions"]),
    }) as CachedJob["status"],
  };
};

/** A CronJob as a Pipeline's status reads it: when it last ran and last succeeded. */
export const cronJobView: Projection<CachedCronJob> = (o) => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  metadata: metadataView(o.metadata),
  status: pick(o["status"] as Raw, ["lastScheduleTime", "lastSuccessfulTime", "active"]) ?? {},
});
