// SubjectAccessReview: may this caller do `verb` on a resource (or subresource) of
// agentry.dev? Asked as the gateway (which needs only `create subjectaccessreviews`), for
// routes whose work the apiserver cannot judge itself: lists and gets answered from the
// gateway's cache, watches, and the data plane's subresources (workspaces/files,
// workspaces/exec, agentruntimes/tasks, pipelines/logs). Cross-namespace lists ask with
// namespace "" (cluster-wide).
//
// Answers are remembered per user, groups, verb, resource, subresource, namespace and name
// for a short TTL (default 5 s), at most `maxEntries` of them (the oldest go first), and
// concurrent identical questions share one review. `invalidate` forgets them at once: the
// gateway calls it when it sees Roles, RoleBindings, ClusterRoles or ClusterRoleBindings
// change, so a revoked binding is normally honoured no longer than the watch takes to tell;
// the TTL bounds it when the watch is down. An answer whose review was in flight while an
// invalidation happened is used for that request but not remembered, and answers asked in
// the second after an invalidation are remembered only until that second ends (the
// apiserver's own RBAC cache may take a moment to see the change the gateway saw).
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

export interface AccessCacheOptions {
  /** How long an answer is remembered (default 5 s). */
  ttlMs?: number;
  /** Most answers remembered (default 10,000). */
  maxEntries?: number;
  /** Told of every question: answered from memory ("hit") or asked of the apiserver ("miss"). */
  onLookup?: (result: "hit" | "miss") => void;
  now?: () => number;
}

interface Remembered {
  expires: number;
  namespace: string;
  answer: AccessAnswer;
}

/** After an invalidation, answers are remembered no longer than this. */
const SETTLE_MS = 1_000;

export class AccessCache {
  private readonly client: KubeClient;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly onLookup: ((result: "hit" | "miss") => void) | undefined;
  private readonly now: () => number;
  private readonly entries = new Map<string, Remembered>();
  private readonly inFlight = new Map<string, Promise<AccessAnswer>>();
  /** Counts invalidations: an answer asked before the latest one is not remembered. */
  private generation = 0;
  private invalidatedAt = -Infinity;

  constructor(client: KubeClient, options: AccessCacheOptions = {}) {
    this.client = client;
    this.ttlMs = options.ttlMs ?? 5_000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.onLookup = options.onLookup;
    this.now = options.now ?? (() => Date.now());
  }

  /** Remembered answers. */
  get size(): number {
    return this.entries.size;
  }

  /** The remembered answer, or undefined when it would take a review (counted as a hit when found). */
  answerNow(who: Identity, q: AccessQuestion): AccessAnswer | undefined {
    const hit = this.entries.get(this.keyOf(who, q));
    if (!hit || this.now() >= hit.expires) return undefined;
    this.onLookup?.("hit");
    return hit.answer;
  }

  /** Who asks, as a key part: computed once per identity object (static tokens and reviewed ones are kept). */
  private readonly askers = new WeakMap<Identity, string>();

  private keyOf(who: Identity, q: AccessQuestion): string {
    let asker = this.askers.get(who);
    if (asker === undefined) {
      asker = JSON.stringify([who.user, who.groups, who.via === "anonymous"]);
      this.askers.set(who, asker);
    }
    return `${asker}${JSON.stringify([q.verb, q.resource, q.subresource ?? "", q.namespace, q.name ?? ""])}`;
  }

  readonly review: AccessReview = (who, q) => {
    const key = this.keyOf(who, q);
    const hit = this.entries.get(key);
    if (hit && this.now() < hit.expires) {
      this.onLookup?.("hit");
      return Promise.resolve(hit.answer);
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.onLookup?.("hit");
      return pending;
    }
    this.onLookup?.("miss");
    const generation = this.generation;
    const asked = this.ask(who, q)
      .then((answer) => {
        if (generation === this.generation) this.remember(key, q.namespace, answer);
        return answer;
      })
      .finally(() => {
        if (this.inFlight.get(key) === asked) this.inFlight.delete(key);
      });
    this.inFlight.set(key, asked);
    return asked;
  };

  /**
   * Forgets the answers about `namespace` (a Role or RoleBinding there changed), or every
   * answer (a ClusterRole or ClusterRoleBinding changed, or the watch had to start over).
   */
  invalidate(namespace?: string): void {
    this.generation++;
    this.invalidatedAt = this.now();
    this.inFlight.clear();
    if (namespace === undefined) this.entries.clear();
    else for (const [key, r] of this.entries) if (r.namespace === namespace) this.entries.delete(key);
  }

  private remember(key: string, namespace: string, answer: AccessAnswer): void {
    const now = this.now();
    const settled = this.invalidatedAt + SETTLE_MS;
    const expires = now < settled ? Math.min(settled, now + this.ttlMs) : now + this.ttlMs;
    this.entries.delete(key);
    this.entries.set(key, { expires, namespace, answer });
    while (this.entries.size > this.maxEntries)
      this.entries.delete(this.entries.keys().next().value as string);
  }

  private async ask(who: Identity, q: AccessQuestion): Promise<AccessAnswer> {
    const r = await this.client.request<{ status?: { allowed?: boolean; reason?: string } }>(
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
    return { allowed: r.status?.allowed === true, reason: r.status?.reason ?? "" };
  }
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
