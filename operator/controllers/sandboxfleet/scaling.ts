// How big a SandboxFleet should be, and when a change may happen. Pure functions of the
// spec, the demand, the load samples and the time given to them.
//
// A sample is one reading of every sandbox's /status, taken at most once per
// spec.samplingInterval (and at once after a spec change); events between samples, the
// operator's own writes included, take none. A window is time spanned by agreeing samples:
// scaleUpWindow samples ask for more sandboxes when the samples of one steady run of such
// asks cover (scaleUpWindow - 1) sampling intervals, so a burst of reconciles can never
// pass a window early, and a slow operator does not stretch it.

export interface FleetBounds {
  minReplicas: number;
  maxReplicas: number;
  replicas?: number;
  warmEmpty: number;
}

export interface Demand {
  /** Sandboxes holding at least one workspace. */
  occupied: number;
  /** Empty sandboxes the waiting workspaces need. */
  newSandboxesNeeded: number;
  /** Sandboxes under cpu or memory pressure. */
  pressured: number;
}

export interface Target {
  replicas: number;
  reason: string;
}

const clamp = (n: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, n));

/** How many sandboxes the fleet wants now: demand plus warm spares, within [min, max], unless pinned. */
export function desiredReplicas(bounds: FleetBounds, demand: Demand): Target {
  if (bounds.replicas !== undefined) {
    const pinned = clamp(bounds.replicas, bounds.minReplicas, bounds.maxReplicas);
    return { replicas: pinned, reason: `pinned to ${pinned} by spec.replicas` };
  }
  const extra = demand.pressured > 0 ? 1 : 0;
  const raw = demand.occupied + demand.newSandboxesNeeded + bounds.warmEmpty + extra;
  const replicas = clamp(raw, bounds.minReplicas, bounds.maxReplicas);
  const parts = [`${demand.occupied} in use`, `${bounds.warmEmpty} warm`];
  if (demand.newSandboxesNeeded) parts.push(`${demand.newSandboxesNeeded} for waiting workspaces`);
  if (extra) parts.push(`1 for pressure on ${demand.pressured} sandbox(es)`);
  const bound =
    raw > bounds.maxReplicas
      ? " (capped at maxReplicas)"
      : raw < bounds.minReplicas
        ? " (raised to minReplicas)"
        : "";
  return { replicas, reason: `${parts.join(" + ")} = ${raw}${bound}` };
}

/**
 * Never scale below what holds workspaces: the fleet may shrink only by sandboxes that are
 * free to go (empty and idle for idleTTL, or drained).
 */
export function safeScaleDownTarget(current: number, desired: number, removable: number): number {
  if (desired >= current) return desired;
  return Math.max(desired, current - removable);
}

/** What the fleet asked for when its sandboxes were sampled. */
export interface ScaleSample {
  /** When the sandboxes were read (ms since the epoch). */
  at: number;
  /** The Deployment's replicas then. */
  current: number;
  /** The size asked for (already limited to the sandboxes free to go). */
  target: number;
  /** Why that size (desiredReplicas' reason). */
  reason: string;
}

export interface ScaleState {
  /** Samples that must agree before scaling up (spec.scaleUpWindow). */
  scaleUpWindow: number;
  /** Samples that must agree before scaling down (spec.scaleDownWindow). */
  scaleDownWindow: number;
  samplingIntervalMs: number;
  /** Least time between two changes (spec.cooldown). */
  cooldownMs: number;
  /** spec.replicas is set: its size applies at once, past windows and cooldown. */
  pinned: boolean;
  /** When the fleet last changed size, if known. */
  lastChangeAt?: number;
}

export type ScalePlan =
  | {
      action: "hold";
      why: "steady" | "window" | "cooldown";
      /** When the window or the cooldown passes, if the samples keep asking. */
      until?: number;
    }
  | { action: "scale"; replicas: number; reason: string };

/** The time `samples` agreeing samples span when taken one sampling interval apart. */
export const windowMs = (samples: number, intervalMs: number): number =>
  Math.max(0, samples - 1) * intervalMs;

const direction = (s: ScaleSample) => Math.sign(s.target - s.current);

/**
 * The newest run of samples that agree with the latest one: same Deployment size, same
 * direction, all taken after the last change (what came before a change asked about
 * another size).
 */
export function currentRun(samples: readonly ScaleSample[], lastChangeAt?: number): ScaleSample[] {
  const latest = samples.at(-1);
  if (!latest) return [];
  const run: ScaleSample[] = [];
  for (let i = samples.length - 1; i >= 0; i--) {
    const s = samples[i]!;
    if (s.current !== latest.current || direction(s) !== direction(latest)) break;
    if (lastChangeAt !== undefined && s.at <= lastChangeAt) break;
    run.unshift(s);
  }
  return run;
}

/** The samples worth keeping: the current run, its first and latest few (only they decide). */
export function keepSamples(samples: readonly ScaleSample[], lastChangeAt?: number, most = 8): ScaleSample[] {
  const run = currentRun(samples, lastChangeAt);
  return run.length <= most ? run : [run[0]!, ...run.slice(run.length - most + 1)];
}

/**
 * Whether to change the fleet's size now: to the latest sample's target once the samples
 * have asked for it, in one direction, over the window's time, and the cooldown since the
 * last change has passed. A pinned size applies at once.
 */
export function planScale(state: ScaleState, samples: readonly ScaleSample[], now: number): ScalePlan {
  // Samples taken before the last change asked about a size the fleet no longer has.
  const run = currentRun(samples, state.lastChangeAt);
  const latest = run.at(-1);
  if (!latest || latest.target === latest.current) return { action: "hold", why: "steady" };
  const up = latest.target > latest.current;
  const reason = `${up ? "scaled up" : "scaled down"} ${latest.current} → ${latest.target}: ${latest.reason}`;
  if (state.pinned) return { action: "scale", replicas: latest.target, reason };
  const span = windowMs(up ? state.scaleUpWindow : state.scaleDownWindow, state.samplingIntervalMs);
  const since = run[0]!.at;
  if (latest.at - since < span) return { action: "hold", why: "window", until: since + span };
  if (state.lastChangeAt !== undefined && now - state.lastChangeAt < state.cooldownMs)
    return { action: "hold", why: "cooldown", until: state.lastChangeAt + state.cooldownMs };
  return { action: "scale", replicas: latest.target, reason };
}
