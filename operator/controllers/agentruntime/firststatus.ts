// A new AgentRuntime's first status: until its Pod is Ready, only something worth saying
// (Ready, an error, a wait on something else) is written; normal progress (creating the Pod,
// scheduled, starting) is not, so a new AgentRuntime costs one status write. Past
// FIRST_STATUS_WAIT_MS the progress so far is written. The clock is the controller's.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";

/** How long a new AgentRuntime's first status may wait for its Pod to be Ready. */
export const FIRST_STATUS_WAIT_MS = 5_000;

/** The reasons of a first status that only says the AgentRuntime is on its way. */
const PROGRESS = new Set<string>([AgentRuntimeReason.PodPending, AgentRuntimeReason.NotReady]);

export class FirstStatus {
  private readonly now: () => Date;
  /** New AgentRuntimes (by uid) whose first status waits for something worth saying: since when. */
  private readonly firstSeen = new Map<string, number>();

  constructor(now: () => Date) {
    this.now = now;
  }

  /**
   * How much longer a new AgentRuntime's first status may wait (undefined: write it now). It
   * waits while it would only report normal progress, for FIRST_STATUS_WAIT_MS at most: the
   * Pod's events bring the AgentRuntime back, and the status written then says Ready. Never
   * while `troubled` (a Pod being replaced or recreated).
   */
  wait(ar: AgentRuntime, status: AgentRuntime["status"], troubled: boolean): number | undefined {
    const uid = ar.metadata.uid ?? "";
    const ready = status?.conditions?.find((c) => c.type === "Ready");
    const progress =
      !ar.status?.phase &&
      !troubled &&
      (status?.phase === "Pending" || status?.phase === "Starting") &&
      PROGRESS.has(ready?.reason ?? "");
    const now = this.now().getTime();
    const since = this.firstSeen.get(uid) ?? now;
    if (!progress || now - since >= FIRST_STATUS_WAIT_MS) {
      this.firstSeen.delete(uid);
      return undefined;
    }
    this.firstSeen.set(uid, since);
    return since + FIRST_STATUS_WAIT_MS - now;
  }

  /** Drops the clocks of AgentRuntimes that are gone (deleted before any status), once there are many. */
  forgetGone(live: () => Iterable<string | undefined>): void {
    if (this.firstSeen.size < 1000) return;
    const uids = new Set(live());
    for (const uid of this.firstSeen.keys()) if (!uids.has(uid)) this.firstSeen.delete(uid);
  }
}
