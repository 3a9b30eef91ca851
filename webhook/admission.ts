// One AdmissionReview (admission.k8s.io/v1) in, one out: /validate runs the kind's rules,
// /mutate answers with the defaults as a JSONPatch. Requests for other groups are allowed
// untouched (the configurations only send agentry kinds). A review whose objects are not in
// the request's namespace (which the apiserver never sends) is denied with a generic message
// before any lookup, so an answer never tells about another namespace's objects.
import { validate, type AdmissionObject, type Lookup, type Policy } from "../lib/admission/index.ts";
import { applyDefaults } from "./defaults.ts";

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  object?: AdmissionObject | null;
  oldObject?: AdmissionObject | null;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
  patchType?: "JSONPatch";
  patch?: string;
}

export interface AdmissionReview {
  apiVersion: "admission.k8s.io/v1";
  kind: "AdmissionReview";
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export type Outcome = "allowed" | "denied" | "error";

const REASONS: Record<number, string> = {
  400: "BadRequest",
  403: "Forbidden",
  409: "Conflict",
  422: "Invalid",
  500: "InternalError",
};

/** Reads the request out of a review body; throws a message for a 400 when it is not one. */
export function requestOf(body: unknown): AdmissionRequest {
  const review = body as Partial<AdmissionReview> | undefined;
  if (review?.apiVersion !== "admission.k8s.io/v1" || review.kind !== "AdmissionReview")
    throw new Error("expected an admission.k8s.io/v1 AdmissionReview");
  const r = review.request;
  if (!r || typeof r.uid !== "string" || !r.kind || typeof r.operation !== "string")
    throw new Error("the AdmissionReview has no request (uid, kind, operation)");
  return r;
}

/** True when a review of a (namespaced) agentry kind names no namespace, or objects of another. */
export function inconsistent(req: AdmissionRequest): boolean {
  if (!req.namespace) return true;
  return [req.object, req.oldObject].some(
    (o) => o?.metadata.namespace && o.metadata.namespace !== req.namespace,
  );
}

/** The one answer to an inconsistent review: the same words whatever it names. */
export const INCONSISTENT_REVIEW =
  "the review's namespace and the namespace of its objects do not agree (or it names none); nothing was checked";

/** The object with its namespace filled from the request (some CREATEs omit it). */
function withNamespace(o: AdmissionObject | null | undefined, namespace: string | undefined) {
  if (!o) return undefined;
  return o.metadata.namespace || !namespace ? o : { ...o, metadata: { ...o.metadata, namespace } };
}

function reply(uid: string, response: Omit<AdmissionResponse, "uid">): AdmissionReview {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, ...response } };
}

export async function reviewValidate(
  req: AdmissionRequest,
  lookup: Lookup,
  policy: Policy,
): Promise<{ review: AdmissionReview; outcome: Outcome }> {
  if (req.kind.group !== "agentry.dev")
    return { review: reply(req.uid, { allowed: true }), outcome: "allowed" };
  if (inconsistent(req))
    return {
      review: reply(req.uid, {
        allowed: false,
        status: { code: 400, message: INCONSISTENT_REVIEW, reason: REASONS[400] },
      }),
      outcome: "denied",
    };
  const object = req.operation === "DELETE" ? undefined : withNamespace(req.object, req.namespace);
  const old = withNamespace(req.oldObject, req.namespace);
  const v = await validate(req.kind.kind, object, old, lookup, policy);
  const warnings = v.warnings.length ? { warnings: v.warnings } : {};
  if (v.allowed) return { review: reply(req.uid, { allowed: true, ...warnings }), outcome: "allowed" };
  return {
    review: reply(req.uid, {
      allowed: false,
      status: { code: v.code, message: v.message, reason: REASONS[v.code] ?? "Invalid" },
      ...warnings,
    }),
    outcome: v.code === 500 ? "error" : "denied",
  };
}

export function reviewMutate(req: AdmissionRequest): { review: AdmissionReview; outcome: Outcome } {
  const object = req.object;
  if (req.kind.group !== "agentry.dev" || !object || req.operation === "DELETE")
    return { review: reply(req.uid, { allowed: true }), outcome: "allowed" };
  const ops = applyDefaults(object);
  const patch = ops.length
    ? { patchType: "JSONPatch" as const, patch: Buffer.from(JSON.stringify(ops)).toString("base64") }
    : {};
  return { review: reply(req.uid, { allowed: true, ...patch }), outcome: "allowed" };
}
