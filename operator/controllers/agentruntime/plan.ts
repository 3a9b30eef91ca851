// What to do about an AgentRuntime's Pods: a pure function of what the cache shows, the
// recreate backoff so far and the time. The reconciler (reconciler.ts) carries the plan
// out; plan.test.ts checks it, also as properties over random states.
//
// The Pod of the current template is named after the template's hash (desired.ts), so a
// spec change makes a Pod of a new name. Where the volume allows it (no ReadWriteOnce claim
// of the AgentRuntime's own, spec.storage), the new Pod is created first and the old one
// keeps serving until the new one is Ready, then goes: a spec change costs no downtime.
// With spec.storage the old Pod goes first (its claim can be attached to one node, and two
// agents must not write the same data), and the new one is created once it is gone.

/** One of the AgentRuntime's Pods, as far as the plan cares. */
export interface PodFacts {
  name: string;
  /** Controlled by the live AgentRuntime (owner reference with its uid). */
  owned: boolean;
  /** Made by this installation for an earlier AgentRuntime of this name (ours to remove). */
  stale: boolean;
  deleting: boolean;
  templateHash: string | undefined;
  phase: string | undefined;
  /** Its Ready condition is True. */
  ready: boolean;
}

/** How often the Pod had to be recreated in a row, and when the next try may happen. */
export interface Backoff {
  count: number;
  notBefore: number;
}

export interface PodPlanInput {
  /** The spec wants a Pod (false while suspended). */
  wantPod: boolean;
  /** The Pod of the current template (the one of its name, whoever's it is). */
  pod: PodFacts | undefined;
  /** The AgentRuntime's other Pods (owned): those of earlier templates. */
  others: PodFacts[];
  templateHash: string;
  /** A new Pod may run beside the old one while it starts (no claim of the agent's own). */
  overlap: boolean;
  /** The agent's workspace is not usable: no Pod is started until it is. */
  workspaceProblem: boolean;
  backoff: Backoff | undefined;
  /** Milliseconds since the epoch (the injected clock). */
  now: number;
  maxBackoffMs: number;
}

/** What to do about the Pod of the current template. */
export type PodAction =
  /** Nothing. */
  | { action: "none" }
  /** Create the Pod (`recreate` after a failure). */
  | { action: "create"; recreate: boolean }
  /** Create it once the backoff is over, in `ms`. */
  | { action: "wait"; ms: number }
  /** Delete the Pod: suspended, or an earlier AgentRuntime's. */
  | { action: "remove"; why: "suspended" | "stale" }
  /** The Pod ended; delete it and recreate it after `delayMs` (the `count`th time in a row). */
  | { action: "failed"; phase: "Failed" | "Succeeded"; count: number; delayMs: number }
  /** The name is held by someone else's Pod: leave it alone. */
  | { action: "conflict" };

export type PodPlan = PodAction & {
  /**
   * Pods of earlier templates to delete now: `changed` before the new Pod exists (it cannot
   * run beside them), `replaced` once it is Ready, `suspended` while suspended.
   */
  retire: { names: string[]; why: "changed" | "replaced" | "suspended" } | undefined;
  /** A Pod of an earlier template is still there (serving, or going away) and the new one not Ready. */
  replacing: boolean;
  /** The Pod of an earlier template that serves while the new one starts. */
  serving: string | undefined;
};

/** The wait before the `count`th recreate in a row: 1 s, doubling, at most `maxMs`. */
export function backoffDelay(count: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, count - 1));
}

/** What to do about the Pod of the current template, earlier ones aside. */
function current(i: PodPlanInput, oldGoing: boolean): PodAction {
  const { pod } = i;
  if (!i.wantPod)
    return pod?.owned && !pod.deleting ? { action: "remove", why: "suspended" } : { action: "none" };
  if (!pod) {
    // Without overlap, the new Pod waits until the old ones are gone.
    if (i.workspaceProblem || oldGoing) return { action: "none" };
    const wait = i.backoff ? i.backoff.notBefore - i.now : 0;
    if (wait > 0) return { action: "wait", ms: wait };
    return { action: "create", recreate: i.backoff !== undefined };
  }
  if (!pod.owned) {
    if (!pod.stale) return { action: "conflict" };
    return pod.deleting ? { action: "none" } : { action: "remove", why: "stale" };
  }
  if (pod.deleting) return { action: "none" };
  if (pod.phase === "Failed" || pod.phase === "Succeeded") {
    const count = (i.backoff?.count ?? 0) + 1;
    return { action: "failed", phase: pod.phase, count, delayMs: backoffDelay(count, i.maxBackoffMs) };
  }
  return { action: "none" };
}

export function planPod(i: PodPlanInput): PodPlan {
  const others = i.others.filter((o) => o.owned);
  const live = others.filter((o) => !o.deleting);
  const newReady =
    i.pod !== undefined &&
    i.pod.owned &&
    !i.pod.deleting &&
    i.pod.templateHash === i.templateHash &&
    i.pod.ready;
  // The one old Pod that may keep serving: Ready, while the new one is not, with overlap.
  const serving =
    i.wantPod && i.overlap && !newReady
      ? live.find((o) => o.ready && o.phase === "Running")?.name
      : undefined;
  const retire = live.filter((o) => o.name !== serving).map((o) => o.name);
  const why = !i.wantPod ? "suspended" : newReady ? "replaced" : "changed";
  return {
    ...current(i, !i.overlap && others.length > 0),
    retire: retire.length ? { names: retire, why } : undefined,
    replacing: i.wantPod && others.length > 0 && !newReady,
    serving,
  };
}
