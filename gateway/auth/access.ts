// SubjectAccessReview for a caller: may `who` do `verb` on an agentry.dev resource in a
// namespace (or cluster-wide: namespace ""). Answers are cached briefly per caller and question.
import type { KubeClient } from "../../lib/kube/client.ts";
import type { Identity } from "./identity.ts";

export interface AccessQuestion {
  verb: string;
  resource: string;
  namespace: string;
  subresource?: string;
}

export interface AccessAnswer {
  at: number;
  allowed: boolean;
  reason: string;
}

export type AccessReviewer = (who: Identity, q: AccessQuestion) => Promise<AccessAnswer>;

export function accessReviewer(client: KubeClient, ttlMs = 10_000): AccessReviewer {
  const cache = new Map<string, AccessAnswer>();
  return async (who, q) => {
    const key = [who.user, who.groups.join(","), q.verb, q.resource, q.subresource ?? "", q.namespace].join(
      "\n",
    );
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
