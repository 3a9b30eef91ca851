// Statuses that only report normal progress. Until the Pod is Ready, a status that only says
// the AgentRuntime is on its way (creating the Pod, scheduled, starting) is not written over
// an earlier one that said the same (or over none): only something worth saying is (Ready,
// an error, a wait on something else, a replacement starting). So a new AgentRuntime costs
// one status write, and a spec change two (replacing, then Ready). Past FIRST_STATUS_WAIT_MS
// the progress so far is written. The clock is the controller's.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";

/** How long a status that only reports progress may wait for the Pod to be Ready. */
export const FIRST_STATUS_WAIT_MS = 5_000;

/** The reasons of a first status that only says the AgentRuntime is on its way. */
const PROGRESS = new Set<string>([AgentRuntimeReason.PodPending, AgentRuntimeReason.NotReady]);

/** A status that only says the AgentRuntime is on its way to Ready. */
function onItsWay(status: AgentRuntime["status"]): boolean {
  const ready = status?.conditions?.find((c) => c.type === "Ready");
  return (status?.phase === "Pending" || status?.phase === "Starting") && PROGRESS.has(ready?.reason ?? "");
}

export class FirstStatus {
  private readonly now: () => Date;
  /** AgentRuntimes (by uid) whose progress status waits for something worth saying: since when. */
  private readonly firstSeen = new Map<string, number>();

  constructor(now: () => Date) {
    this.now = now;
  }

  /**
   * How much longer the status may wait (undefined: write it now). It waits while it would
   * only report normal progress over a status that did too (or over none), for
   * FIRST_STATUS_WAIT_MS at most: the Pod's events bring the AgentRuntime back, and the status
   * written then says Ready. Never while `troubled` (a Pod being replaced or recreated).
   */
  wait(ar: AgentRuntime, status: AgentRuntime["status"], troubled: boolean): number | undefined {
    const uid = ar.metadata.uid ?? "";
    const progress = (!ar.status?.phase || onItsWay(ar.status)) && !troubled && onItsWay(status);
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
