// Which sandboxes may leave when the fleet shrinks, as pure functions of the sandboxes, the
// time and what earlier samples saw. An empty sandbox may go once it has been empty for
// idleTTL (at once when not ready, or when the size is pinned). A sandbox holding workspaces
// leaves only through a drain: when the target is below what all the empty ones can give
// back, the least loaded occupied ones stop taking workspaces and go once their workspaces are
// flushed to the store, or at drainTimeout (what was not flushed is then reported lost).
// The ReplicaSet removes the pods with the lowest pod-deletion-cost, so those leaving are
// marked cheapest first, and the Deployment shrinks only once the marks are visible.
// A drain's start is written on the pod with its draining mark (ANNOTATION_DRAINING_SINCE),
// so a drain survives a restart or a new leader; how long a sandbox has been empty is kept
// in memory only (a new leader waits idleTTL again, as it does for the scaling windows).
import { ANNOTATION_DRAINING, ANNOTATION_DRAINING_SINCE, DELETION_COST } from "./desired.ts";

/** A sandbox as the scale-down plan sees it. */
export interface SandboxSlot {
  name: string;
  ready: boolean;
  /** Keys of the workspaces placed on it. */
  workspaces: readonly string[];
  /** Of those, the ones whose latest changes the sandbox does not report as in the store. */
  unflushed: readonly string[];
  /** The pod's annotations as the cache shows them (deletion cost, draining mark). */
  annotations: Readonly<Record<string, string>>;
}

export interface DrainState {
  /** Since when each empty sandbox has been seen empty (ms since the epoch). */
  emptySince: ReadonlyMap<string, number>;
  /**
   * Since when each occupied sandbox chosen to leave has drained (a sandbox not in it that
   * carries a drain mark drains since its mark says: drainMarkedAt).
   */
  drainSince: ReadonlyMap<string, number>;
  /** Sandboxes chosen to leave whose mark the cache did not show yet. */
  pendingLeaving: ReadonlySet<string>;
}

export const emptyDrainState = (): DrainState => ({
  emptySince: new Map(),
  drainSince: new Map(),
  pendingLeaving: new Set(),
});

export interface DrainSettings {
  idleTtlMs: number;
  drainTimeoutMs: number;
  /** spec.replicas is set: every empty sandbox may go at once. */
  pinned: boolean;
  /** The fleet has an object store: a drained sandbox goes as soon as its workspaces are flushed. */
  stored: boolean;
}

export interface Outgoing {
  /** Sandboxes free to go, in the order to remove them: empty ones, then drained ones. */
  outgoing: string[];
  /** Occupied sandboxes chosen to leave: they take no new workspaces and are told to drain. */
  draining: Set<string>;
  /** Workspaces a drain gave up on at drainTimeout before their flush completed. */
  abandoned: { sandbox: string; workspaces: readonly string[] }[];
  emptySince: Map<string, number>;
  drainSince: Map<string, number>;
}

/** The sandboxes that may leave now, given the current size and the target. */
export function planOutgoing(
  state: DrainState,
  sandboxes: readonly SandboxSlot[],
  sizes: { current?: number; target: number },
  settings: DrainSettings,
  now: number,
): Outgoing {
  const empties = sandboxes.filter((s) => s.workspaces.length === 0);
  const emptySince = new Map<string, number>();
  for (const s of empties) emptySince.set(s.name, state.emptySince.get(s.name) ?? now);
  const idleFor = (s: SandboxSlot) => now - emptySince.get(s.name)!;
  const notReadyFirst = (a: SandboxSlot, b: SandboxSlot) => Number(a.ready) - Number(b.ready);
  const emptyOut = settings.pinned
    ? [...empties].sort(notReadyFirst)
    : empties
        .filter((s) => !s.ready || idleFor(s) >= settings.idleTtlMs)
        .sort((a, b) => notReadyFirst(a, b) || emptySince.get(a.name)! - emptySince.get(b.name)!);

  const draining = new Set<string>();
  const drained: string[] = [];
  const abandoned: Outgoing["abandoned"] = [];
  const drainSince = new Map<string, number>();
  // Occupied sandboxes drain only for what all the empty ones cannot give back, idle or not
  // yet (a pinned size, a lowered maxReplicas): never while empty ones are still to go.
  const { current, target } = sizes;
  if (current !== undefined && target < current - empties.length) {
    const occupied = sandboxes
      .filter((s) => s.workspaces.length > 0)
      .sort((a, b) => a.workspaces.length - b.workspaces.length || a.name.localeCompare(b.name));
    for (const s of occupied.slice(0, current - empties.length - target)) {
      draining.add(s.name);
      const since = state.drainSince.get(s.name) ?? drainMarkedAt(s, now) ?? now;
      drainSince.set(s.name, since);
      // With a store, the drain call (made when the drain began) started the flushes: the
      // sandbox goes once they are done; else, or when they do not finish, at drainTimeout.
      if (settings.stored && since < now && s.unflushed.length === 0) drained.push(s.name);
      else if (now - since >= settings.drainTimeoutMs) {
        drained.push(s.name);
        if (settings.stored && s.unflushed.length > 0)
          abandoned.push({ sandbox: s.name, workspaces: s.unflushed });
      }
    }
  }
  return {
    outgoing: [...emptyOut.map((s) => s.name), ...drained],
    draining,
    abandoned,
    emptySince,
    drainSince,
  };
}

/**
 * When the sandbox's drain began, as its pod's marks say (written by an earlier pass, maybe
 * of another operator): undefined without a draining mark or a readable time; never later
 * than `now`.
 */
export function drainMarkedAt(s: Pick<SandboxSlot, "annotations">, now: number): number | undefined {
  if (s.annotations[ANNOTATION_DRAINING] !== "true") return undefined;
  const at = Date.parse(s.annotations[ANNOTATION_DRAINING_SINCE] ?? "");
  return Number.isFinite(at) ? Math.min(at, now) : undefined;
}

/** Cost of deleting a pod for its ReplicaSet: leaving first, then empty, occupied ones last. */
export const LEAVING_COST = "-1000";
export const costOf = (s: SandboxSlot, leaving: boolean): string =>
  leaving ? LEAVING_COST : s.workspaces.length > 0 ? String(100 + s.workspaces.length) : "0";

/** A change of a sandbox pod's marks, and what the sandbox itself is told. */
export interface Mark {
  name: string;
  cost: string;
  /** Marked draining (takes no new workspaces). */
  draining: boolean;
  /** While draining: when the drain began (ms since the epoch), written beside the mark. */
  since?: number;
  /** Tell the sandbox to drain (it is newly marked) or to take work again (it was marked). */
  tell?: "drain" | "undrain";
}

/**
 * The marks that differ from what the pods carry. A draining mark carries when the drain
 * began: the time a pod's mark already says, else the drain's start (`drainSince`), else now.
 */
export function marksToWrite(
  sandboxes: readonly SandboxSlot[],
  leaving: ReadonlySet<string>,
  draining: ReadonlySet<string>,
  drainSince: ReadonlyMap<string, number>,
  now: number,
): Mark[] {
  const marks: Mark[] = [];
  for (const s of sandboxes) {
    const cost = costOf(s, leaving.has(s.name));
    const drain = leaving.has(s.name) || draining.has(s.name);
    const wasDraining = s.annotations[ANNOTATION_DRAINING] === "true";
    if (s.annotations[DELETION_COST] === cost && wasDraining === drain) continue;
    const tell = drain ? "drain" : wasDraining ? "undrain" : undefined;
    const since = drain ? (drainMarkedAt(s, now) ?? drainSince.get(s.name) ?? now) : undefined;
    marks.push({
      name: s.name,
      cost,
      draining: drain,
      ...(tell ? { tell } : {}),
      ...(since !== undefined ? { since } : {}),
    });
  }
  return marks;
}
