// SandboxFleet scaling decisions, as pure functions plus one small state machine that is
// driven only by its inputs (sample results and the time given to it).

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
 * empty and have been idle for idleTTL.
 */
export function safeScaleDownTarget(current: number, desired: number, removableEmpty: number): number {
  if (desired >= current) return desired;
  return Math.max(desired, current - removableEmpty);
}

export interface GateOptions {
  scaleUpWindow: number;
  scaleDownWindow: number;
  cooldownMs: number;
}

/**
 * Windows and cooldown against flapping: a change goes through only after `window`
 * consecutive samples agree on its direction, and not sooner than `cooldownMs` after the
 * previous change. A pinned size (spec.replicas) bypasses the windows.
 */
export class ScaleGate {
  private up = 0;
  private down = 0;
  private lastChange = Number.NEGATIVE_INFINITY;
  private readonly options: GateOptions;

  constructor(options: GateOptions) {
    this.options = options;
  }

  /** Feeds one sample; returns the size to set now, or undefined to keep the current one. */
  observe(current: number, target: number, nowMs: number, pinned = false): number | undefined {
    if (target === current) {
      this.up = 0;
      this.down = 0;
      return undefined;
    }
    if (pinned) return this.change(target, nowMs);
    if (target > current) {
      this.up++;
      this.down = 0;
      if (this.up < this.options.scaleUpWindow) return undefined;
    } else {
      this.down++;
      this.up = 0;
      if (this.down < this.options.scaleDownWindow) return undefined;
    }
    if (nowMs - this.lastChange < this.options.cooldownMs) return undefined;
    return this.change(target, nowMs);
  }

  private change(target: number, nowMs: number): number {
    this.up = 0;
    this.down = 0;
    this.lastChange = nowMs;
    return target;
  }
}
