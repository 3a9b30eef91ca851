// What to do about an AgentRuntime's Pod: a pure function of what the cache shows, the
// recreate backoff so far and the time. The reconciler (reconciler.ts) carries the plan
// out; plan.test.ts checks it, also as properties over random states.

/** The Pod of the AgentRuntime's name, as far as the plan cares. */
export interface PodFacts {
  /** Controlled by the live AgentRuntime (owner reference with its uid). */
  owned: boolean;
  /** Made by this installation for an earlier AgentRuntime of this name (ours to remove). */
  stale: boolean;
  deleting: boolean;
  templateHash: string | undefined;
  phase: string | undefined;
}

/** How often the Pod had to be recreated in a row, and when the next try may happen. */
export interface Backoff {
  count: number;
  notBefore: number;
}

export interface PodPlanInput {
  /** The spec wants a Pod (false while suspended). */
  wantPod: boolean;
  pod: PodFacts | undefined;
  templateHash: string;
  /** The agent's workspace is not usable: no Pod is started until it is. */
  workspaceProblem: boolean;
  backoff: Backoff | undefined;
  /** Milliseconds since the epoch (the injected clock). */
  now: number;
  maxBackoffMs: number;
}

export type PodPlan =
  /** Nothing to do; `replacing` while an old Pod is still going away. */
  | { action: "none"; replacing: boolean }
  /** Create the Pod (`recreate` after a failure). */
  | { action: "create"; recreate: boolean }
  /** Create it once the backoff is over, in `ms`. */
  | { action: "wait"; ms: number }
  /** Delete the Pod: suspended, the spec changed, or an earlier AgentRuntime's. */
  | { action: "remove"; why: "suspended" | "changed" | "stale" }
  /** The Pod ended; delete it and recreate it after `delayMs` (the `count`th time in a row). */
  | { action: "failed"; phase: "Failed" | "Succeeded"; count: number; delayMs: number }
  /** The name is held by someone else's Pod: leave it alone. */
  | { action: "conflict" };

/** The wait before the `count`th recreate in a row: 1 s, doubling, at most `maxMs`. */
export function backoffDelay(count: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, count - 1));
}

export function planPod(i: PodPlanInput): PodPlan {
  const { pod } = i;
  if (!i.wantPod) {
    if (pod?.owned && !pod.deleting) return { action: "remove", why: "suspended" };
    return { action: "none", replacing: false };
  }
  if (!pod) {
    if (i.workspaceProblem) return { action: "none", replacing: false };
    const wait = i.backoff ? i.backoff.notBefore - i.now : 0;
    if (wait > 0) return { action: "wait", ms: wait };
    return { action: "create", recreate: i.backoff !== undefined };
  }
  if (!pod.owned) {
    if (!pod.stale) return { action: "conflict" };
    return pod.deleting ? { action: "none", replacing: true } : { action: "remove", why: "stale" };
  }
  if (pod.deleting) return { action: "none", replacing: true };
  if (pod.templateHash !== i.templateHash) return { action: "remove", why: "changed" };
  if (pod.phase === "Failed" || pod.phase === "Succeeded") {
    const count = (i.backoff?.count ?? 0) + 1;
    return { action: "failed", phase: pod.phase, count, delayMs: backoffDelay(count, i.maxBackoffMs) };
  }
  return { action: "none", replacing: false };
}
