// Request bodies → objects the apiserver can take: apiVersion/kind/namespace/name checked
// against the URL, status dropped (it is read-only here), the spec validated with the
// kind's zod schema, the caller stamped in annotations. Pure functions, unit-tested.
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { problemOf, type FieldError } from "../problem.ts";

export const CREATED_BY = "agentry.dev/created-by";
export const LAST_MODIFIED_BY = "agentry.dev/last-modified-by";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function invalid(def: KindDefinition, errors: FieldError[]): Error {
  const first = errors[0];
  return problemOf(
    422,
    `${def.kind} is invalid: ${first ? `${first.path || "(body)"}: ${first.message}` : "see errors"}`,
    {
      errors,
    },
  );
}

/** Checks the identifying fields against the URL and fills in what is missing. */
export function prepareObject(
  def: KindDefinition,
  body: unknown,
  target: { namespace: string; name?: string },
): KubeObject {
  if (!isObject(body)) throw problemOf(400, `the request body must be a JSON object (a ${def.kind})`);
  const errors: FieldError[] = [];
  const obj = structuredClone(body);
  if (obj.apiVersion === undefined) obj.apiVersion = def.apiVersion;
  else if (obj.apiVersion !== def.apiVersion)
    errors.push({ path: "apiVersion", message: `must be ${def.apiVersion} (or omitted)` });
  if (obj.kind === undefined) obj.kind = def.kind;
  else if (obj.kind !== def.kind) errors.push({ path: "kind", message: `must be ${def.kind} (or omitted)` });
  if (obj.metadata === undefined) obj.metadata = {};
  if (!isObject(obj.metadata)) {
    errors.push({ path: "metadata", message: "must be an object" });
    throw invalid(def, errors);
  }
  const meta = obj.metadata;
  if (meta.namespace === undefined) meta.namespace = target.namespace;
  else if (meta.namespace !== target.namespace)
    errors.push({
      path: "metadata.namespace",
      message: `must be ${target.namespace}, the namespace in the URL (or omitted)`,
    });
  if (target.name !== undefined) {
    if (meta.name === undefined) meta.name = target.name;
    else if (meta.name !== target.name)
      errors.push({
        path: "metadata.name",
        message: `must be ${target.name}, the name in the URL (or omitted)`,
      });
  } else if (meta.name === undefined && meta.generateName === undefined) {
    errors.push({ path: "metadata.name", message: "is required (or metadata.generateName)" });
  }
  delete obj.status;
  if (errors.length) throw invalid(def, errors);
  validate(def, obj);
  return obj as KubeObject;
}

/**
 * Validates a whole object with the kind's zod schema; 422 listing every field error.
 * Returns the parsed object, with the schema's defaults filled in.
 */
export function validate(def: KindDefinition, obj: unknown): unknown {
  const result = def.object.safeParse(obj);
  if (result.success) return result.data;
  throw invalid(
    def,
    result.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
  );
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Sets agentry.dev/* caller annotations on an object (create: both; otherwise last-modified-by). */
export function stamp(obj: KubeObject, user: string, created: boolean): KubeObject {
  const annotations = { ...(obj.metadata.annotations ?? {}) };
  if (created) annotations[CREATED_BY] = user;
  annotations[LAST_MODIFIED_BY] = user;
  obj.metadata.annotations = annotations;
  return obj;
}

/** The resourceVersion named by an If-Match / If-None-Match header ("rv", W/"rv" or rv). */
export function etagVersion(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^\s*(?:W\/)?"?([0-9]+)"?\s*$/.exec(header);
  return m?.[1];
}

/** etagVersion of a request header; 400 when it is there but not an ETag this gateway gives. */
export function preconditionOf(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const rv = etagVersion(header);
  if (rv === undefined)
    throw problemOf(
      400,
      `the ${name} header must be an ETag the gateway gave, such as "42" (a resourceVersion)`,
    );
  return rv;
}

export const etagOf = (obj: KubeObject): string | undefined =>
  obj.metadata.resourceVersion ? `"${obj.metadata.resourceVersion}"` : undefined;

/** Removes what callers do not need to see (managedFields is large and server-internal). */
export function clean<T extends KubeObject>(obj: T): T {
  if (obj?.metadata) delete obj.metadata.managedFields;
  return obj;
}

export { isObject };

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Checks a namespace and object name taken from the URL before they reach the apiserver
 * (a name such as ".." would otherwise change the path the request goes to); 400 naming
 * the bad one.
 */
export function checkPathNames(namespace: string | undefined, name: string | undefined): void {
  if (namespace !== undefined && (namespace.length > 63 || !NAMESPACE.test(namespace)))
    throw problemOf(
      400,
      `namespace ${JSON.stringify(namespace.slice(0, 80))} in the URL is not a valid namespace name (lower-case letters, digits and '-', at most 63)`,
    );
  if (name !== undefined && (name.length > 253 || !NAME.test(name)))
    throw problemOf(
      400,
      `name ${JSON.stringify(name.slice(0, 80))} in the URL is not a valid object name (lower-case letters, digits, '-' and '.', at most 253)`,
    );
}

// A Kubernetes label selector as the gateway takes it (the same expression is the
// `labelSelector` pattern of the OpenAPI document): comma-separated requirements `key`,
// `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1)`.
// Keys and values are written as narrowly as label keys and values (api/v1alpha1), so
// whatever matches, the apiserver accepts; the gateway answers 400 to anything else.
const SEL_KEY_PART = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
const SEL_DNS_LABEL = "[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?";
// `in` and `notin` alone are operators, not keys.
const SEL_KEY = `(?!(in|notin)([ =!,()]|$))(${SEL_DNS_LABEL}(\\.${SEL_DNS_LABEL}){0,3}/)?${SEL_KEY_PART}`;
const SEL_REQUIREMENT =
  `(!${SEL_KEY}` +
  `|${SEL_KEY}( *(=|==|!=) *(${SEL_KEY_PART})?` +
  `| +(in|notin) *\\( *${SEL_KEY_PART}( *, *${SEL_KEY_PART})* *\\))?)`;
export const LABEL_SELECTOR_PATTERN = `^(${SEL_REQUIREMENT}( *, *${SEL_REQUIREMENT})*)?$`;
const LABEL_SELECTOR = new RegExp(LABEL_SELECTOR_PATTERN);
export const LABEL_SELECTOR_MAX = 4096;

/** 400 unless `selector` is a label selector the gateway passes on (see LABEL_SELECTOR_PATTERN). */
export function checkLabelSelector(selector: string): void {
  if (selector.length > LABEL_SELECTOR_MAX || !LABEL_SELECTOR.test(selector))
    throw problemOf(
      400,
      `query parameter labelSelector ${JSON.stringify(selector.slice(0, 80))} is not a label selector: use comma-separated requirements such as app=web, tier!=db, env in (a,b), !legacy`,
    );
}
