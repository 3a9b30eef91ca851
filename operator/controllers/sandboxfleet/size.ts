// One sample's decision about a fleet's size, as a pure function: the target from demand,
// which sandboxes may go (drain.ts), whether the windows and cooldown let a change through
// (scaling.ts), and the last guards before a shrink: the pods of the previous shrink are
// gone, and the ones to leave visibly carry the lowest deletion cost.
import {
  LEAVING_COST,
  marksToWrite,
  planOutgoing,
  type DrainSettings,
  type DrainState,
  type Mark,
  type SandboxSlot,
} from "./drain.ts";
import { DELETION_COST } from "./desired.ts";
import {
  desiredReplicas,
  keepSamples,
  planScale,
  safeScaleDownTarget,
  type Demand,
  type FleetBounds,
  type ScaleSample,
  type ScaleState,
  type Target,
} from "./scaling.ts";

export interface SizeState extends DrainState {
  /** The samples that still count towards a window (scaling.ts keepSamples). */
  samples: readonly ScaleSample[];
  /** When the fleet last changed size. */
  lastChangeAt?: number;
}

export interface SizeInput {
  bounds: FleetBounds;
  demand: Demand;
  /** The sandboxes with the workspaces placed on them after this pass's placements. */
  sandboxes: readonly SandboxSlot[];
  /** The Deployment's replicas; undefined before it exists. */
  current?: number;
  /** Sandbox pods alive (not being deleted). */
  livePods: number;
  windows: Omit<ScaleState, "pinned" | "lastChangeAt">;
  drain: Omit<DrainSettings, "pinned">;
}

export interface SizePlan {
  target: Target;
  /** The Deployment's replicas to set. */
  replicas: number;
  /** Set when this sample changes the size. */
  change?: { up: boolean; reason: string };
  /** Why the size is held while the target differs (for logs). */
  held?: string;
  /** Pod marks to write (deletion cost, draining) and sandboxes to tell. */
  marks: Mark[];
  /** Workspaces a drain gave up on before their flush completed, by sandbox. */
  abandoned: { sandbox: string; workspaces: readonly string[] }[];
  state: SizeState;
}

export function planSize(state: SizeState, input: SizeInput, now: number): SizePlan {
  const pinned = input.bounds.replicas !== undefined;
  const target = desiredReplicas(input.bounds, input.demand);
  const { current } = input;
  const out = planOutgoing(
    state,
    input.sandboxes,
    { ...(current !== undefined ? { current } : {}), target: target.replicas },
    { ...input.drain, pinned },
    now,
  );
  let next: number | undefined = target.replicas;
  let held: string | undefined;
  let pendingLeaving: ReadonlySet<string> = state.pendingLeaving;
  let samples: ScaleSample[] = [];
  let lastChangeAt = state.lastChangeAt;
  let reason = target.reason;
  if (current !== undefined) {
    const sample: ScaleSample = {
      at: now,
      current,
      target: safeScaleDownTarget(current, target.replicas, out.outgoing.length),
      reason: target.reason,
    };
    samples = [...state.samples, sample];
    const plan = planScale(
      { ...input.windows, pinned, ...(lastChangeAt !== undefined ? { lastChangeAt } : {}) },
      samples,
      now,
    );
    next = plan.action === "scale" ? plan.replicas : undefined;
    if (plan.action === "scale") reason = plan.reason;
    else if (sample.target !== current) held = `the ${plan.why} holds ${current} → ${sample.target}`;
    // More live pods than replicas: the ReplicaSet has not removed the pods of the last
    // shrink yet. Counting them again as empty would give back a sandbox twice (and let it
    // pick an occupied one): hold until they are gone.
    if (next !== undefined && next < current && input.livePods > current) {
      held = `${input.livePods - current} pod(s) of the last scale-down are still going`;
      next = undefined;
    }
    // The ReplicaSet picks which pods to delete by their cost: shrink only once the outgoing
    // ones visibly carry the lowest, never before (it could pick a full one).
    if (next !== undefined && next < current) {
      const chosen = out.outgoing.slice(0, current - next);
      const cost = (name: string) => input.sandboxes.find((s) => s.name === name)?.annotations[DELETION_COST];
      if (!chosen.every((name) => cost(name) === LEAVING_COST)) {
        pendingLeaving = new Set(chosen);
        held = `waiting for ${chosen.join(", ")} to be marked cheapest to delete`;
        next = undefined;
      }
    }
  }
  const replicas = next ?? current!;
  const changed = current !== undefined && replicas !== current;
  if (changed) lastChangeAt = now;
  const outgoing = new Set(out.outgoing);
  const leaving = new Set([
    ...out.outgoing.slice(0, Math.max(0, (current ?? replicas) - replicas)),
    ...[...pendingLeaving].filter((n) => outgoing.has(n)),
  ]);
  return {
    target,
    replicas,
    ...(changed ? { change: { up: replicas > current, reason } } : {}),
    ...(held && !changed ? { held } : {}),
    marks: marksToWrite(input.sandboxes, leaving, out.draining, out.drainSince, now),
    abandoned: out.abandoned,
    state: {
      emptySince: out.emptySince,
      drainSince: out.drainSince,
      pendingLeaving: new Set(replicas === current ? [...pendingLeaving].filter((n) => leaving.has(n)) : []),
      samples: changed ? [] : keepSamples(samples, lastChangeAt),
      ...(lastChangeAt !== undefined ? { lastChangeAt } : {}),
    },
  };
}
