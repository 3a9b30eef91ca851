// What the fleet controller remembers of each fleet between passes, and when a fleet's
// sandboxes are due to be sampled again. Lost with the process: a restarted or newly elected
// operator starts sampling afresh (its first windows start then, as the HPA's do), takes the
// time of the last scaling from the fleet's status, and the start of a drain from the pod's
// marks (drain.ts).
import type { SandboxFleet } from "../../../api/v1alpha1/index.ts";
import { validDurationMs as durationMs } from "../../../lib/cli/duration.ts";
import { emptyDrainState } from "./drain.ts";
import type { SizeState } from "./size.ts";

/** What a sandbox reported at the last sample. */
export interface SandboxLoad {
  cpu: number;
  memory: number;
  draining: boolean;
  /** Workspaces callers asked this sandbox for that it does not hold (ids). */
  wakeRequests: readonly string[];
}

export interface Sampled {
  at: number;
  /** The fleet's generation then: a spec change is sampled at once. */
  generation: number | undefined;
  loads: ReadonlyMap<string, SandboxLoad>;
}

export interface FleetState {
  size: SizeState;
  sampled?: Sampled;
  /** The last scaling (kept here: the cache may not show our own status write yet). */
  lastScale?: { time: string; reason: string };
  /** Workspaces whose sandbox a drain removed before their flush completed: what was lost. */
  lost: Map<string, string>;
}

/** The shortest sampling interval: a fleet asking for less (even 0s) is sampled this often. */
export const MIN_SAMPLING_MS = 100;

export const samplingIntervalMs = (fleet: SandboxFleet): number =>
  Math.max(MIN_SAMPLING_MS, durationMs(fleet.spec.samplingInterval));

/** Whether the sandboxes are to be read now: never yet, a sampling interval since, or a new spec. */
export function sampleDue(sampled: Sampled | undefined, fleet: SandboxFleet, now: number): boolean {
  if (!sampled || sampled.generation !== fleet.metadata.generation) return true;
  return now - sampled.at >= samplingIntervalMs(fleet);
}

/** How long until the next sample is due. */
export function untilNextSample(sampled: Sampled | undefined, fleet: SandboxFleet, now: number): number {
  if (!sampled) return 0;
  return Math.max(0, sampled.at + samplingIntervalMs(fleet) - now);
}

export class FleetStates {
  private readonly states = new Map<string, FleetState>();

  /** The state of the fleet with cache key `key`, started from its status when new. */
  for(key: string, fleet: SandboxFleet): FleetState {
    let state = this.states.get(key);
    if (!state) {
      const status = fleet.status;
      const lastChangeAt = status?.lastScaleTime ? Date.parse(status.lastScaleTime) : NaN;
      state = {
        size: {
          ...emptyDrainState(),
          samples: [],
          ...(Number.isFinite(lastChangeAt) ? { lastChangeAt } : {}),
        },
        lost: new Map(),
        ...(status?.lastScaleTime
          ? { lastScale: { time: status.lastScaleTime, reason: status.lastScaleReason ?? "" } }
          : {}),
      };
      this.states.set(key, state);
    }
    return state;
  }

  delete(key: string): void {
    this.states.delete(key);
  }
}
