// Defaulting admission: the defaults of the zod schemas (the same ones the CRDs carry, so a
// request that did not pass through the apiserver's defaulting, e.g. in the gateway, gets
// them too) and what a schema cannot default: the agentry.dev/fleet label on a Workspace,
// so `kubectl get ws -l agentry.dev/fleet=<name>` lists a fleet's workspaces. Only adds
// what is missing; never changes a value the user set.
import { specSchemas } from "../api/v1alpha1/index.ts";

/** Label on a Workspace naming its SandboxFleet, set by the defaulting webhook. */
export const FLEET_LABEL = "agentry.dev/fleet";

export interface JsonPatchOp {
  op: "add";
  path: string;
  value: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const escape = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

/** "add" operations that turn `current` into `wanted` where `current` lacks a field. */
export function addOps(current: unknown, wanted: unknown, path: string): JsonPatchOp[] {
  if (current === undefined) return wanted === undefined ? [] : [{ op: "add", path, value: wanted }];
  if (isObject(current) && isObject(wanted))
    return Object.entries(wanted).flatMap(([k, v]) => addOps(current[k], v, `${path}/${escape(k)}`));
  if (Array.isArray(current) && Array.isArray(wanted) && current.length === wanted.length)
    return wanted.flatMap((v, i) => addOps(current[i], v, `${path}/${i}`));
  return [];
}

interface Defaultable {
  kind: string;
  metadata?: { labels?: Record<string, string> };
  spec?: unknown;
}

/**
 * The JSONPatch that applies agentry's defaults to `object`. A spec that does not match its
 * schema gets no spec defaults: validation reports it with the schema's own message.
 */
export function applyDefaults(object: Defaultable): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const schema = (specSchemas as Record<string, (typeof specSchemas)[keyof typeof specSchemas]>)[object.kind];
  if (schema && object.spec !== undefined) {
    const parsed = schema.safeParse(object.spec);
    if (parsed.success) ops.push(...addOps(object.spec, parsed.data, "/spec"));
  }
  if (object.kind === "Workspace") {
    const fleet = (object.spec as { fleetRef?: { name?: unknown } } | undefined)?.fleetRef?.name;
    if (typeof fleet === "string" && object.metadata?.labels?.[FLEET_LABEL] === undefined) {
      if (!object.metadata?.labels) ops.push({ op: "add", path: "/metadata/labels", value: {} });
      ops.push({ op: "add", path: `/metadata/labels/${escape(FLEET_LABEL)}`, value: fleet });
    }
  }
  return ops;
}
