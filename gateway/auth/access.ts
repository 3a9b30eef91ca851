// SubjectAccessReview: may this caller do `verb` on a resource (or subresource) of
// agentry.dev? Asked as the gateway (which needs only `create subjectaccessreviews`), for
// routes whose work the apiserver cannot judge itself: watches, and the data plane's
// subresources (workspaces/files, workspaces/exec, agentruntimes/tasks, pipelines/logs).
// Answers are cached briefly per caller and question. Cross-namespace lists ask with
// namespace "" (cluster-wide).
import type { KubeClient } from "../../lib/kube/client.ts";
import { problemOf } from "../problem.ts";
import type { Identity } from "./identity.ts";

export interface AccessQuestion {
  verb: string;
  /** Plural of an agentry.dev kind. */
  resource: string;
  subresource?: string;
  namespace: string;
  name?: string;
}

export interface AccessAnswer {
  allowed: boolean;
  reason: string;
}

export type AccessReview = (who: Identity, q: AccessQuestion) => Promise<AccessAnswer>;
export type AccessReviewer = AccessReview;

export function accessReviewer(client: KubeClient, ttlMs = 5_000): AccessReview {
  const cache = new Map<string, AccessAnswer & { at: number }>();
  return async (who, q) => {
    const key = JSON.stringify([
      who.user,
      who.groups,
      q.verb,
      q.resource,
      q.subresource,
      q.namespace,
      q.name,
    ]);
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit;
    const r = await client.request<{ status?: { allowed?: boolean; reason?: string } }>(
      "POST",
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      {
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: who.user,
            groups: who.via === "anonymous" ? who.groups : [...who.groups, "system:authenticated"],
            resourceAttributes: {
              group: "agentry.dev",
              resource: q.resource,
              verb: q.verb,
              namespace: q.namespace,
              ...(q.subresource ? { subresource: q.subresource } : {}),
              ...(q.name ? { name: q.name } : {}),
            },
          },
        },
      },
    );
    const answer = { at: Date.now(), allowed: r.status?.allowed === true, reason: r.status?.reason ?? "" };
    if (cache.size > 10_000) cache.clear();
    cache.set(key, answer);
    return answer;
  };
}

/** The RBAC words of a question: "create workspaces/exec". */
export const rbacOf = (q: AccessQuestion): string =>
  `${q.verb} ${q.resource}${q.subresource ? `/${q.subresource}` : ""}`;

/** Throws 403 naming the verb and subresource unless the caller may. */
export async function requireAccess(review: AccessReview, who: Identity, q: AccessQuestion): Promise<void> {
  const d = await review(who, q);
  if (d.allowed) return;
  throw problemOf(
    403,
    `${who.user} may not ${rbacOf(q)} (group agentry.dev)${q.name ? ` on ${q.name}` : ""} in namespace ${q.namespace}: RBAC must grant the verb "${q.verb}" on "${q.resource}${q.subresource ? `/${q.subresource}` : ""}" (the chart's agentry-edit role does)${d.reason ? `; ${d.reason}` : ""}`,
    {
      extra: { verb: q.verb, resource: q.resource, ...(q.subresource ? { subresource: q.subresource } : {}) },
    },
  );
}
