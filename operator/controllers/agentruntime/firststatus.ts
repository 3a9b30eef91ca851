// Statuses that only report normal progress. Until the Pod is Ready, a status that only says
// the AgentRuntime is on its way (creating the Pod, scheduled, starting) is not written over
// an earlier one that said the same (or over none), and a status that only says the Pod of a
// new spec is on its way while the earlier one serves is not written over the Ready status
// it replaces: only something worth saying is (Ready, an error, a wait on something else, a
// replacement with downtime or in trouble). So a new AgentRuntime costs one status write,
// and so does a spec change whose new Pod is Ready within FIRST_STATUS_WAIT_MS (until then
// status.observedGeneration is behind metadata.generation, which kstatus reads as in
// progress). Past FIRST_STATUS_WAIT_MS the progress so far is written. The clock is the
// controller's.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";

/** How long a status that only reports progress may wait for the Pod to be Ready. */
export const FIRST_STATUS_WAIT_MS = 5_000;

/** The reasons of a first status that only says the AgentRuntime is on its way. */
const PROGRESS = new Set<string>([AgentRuntimeReason.PodPending, AgentRuntimeReason.NotReady]);

type Status = AgentRuntime["status"];
const condition = (status: Status, type: string) => status?.conditions?.find((c) => c.type === type);

/** A status that only says the AgentRuntime is on its way to Ready. */
function onItsWay(status: Status): boolean {
  const ready = condition(status, "Ready");
  return (status?.phase === "Pending" || status?.phase === "Starting") && PROGRESS.has(ready?.reason ?? "");
}

/** A status that says the agent serves, with nothing stalled. */
function serves(status: Status): boolean {
  return (
    status?.phase === "Ready" &&
    condition(status, "Ready")?.status === "True" &&
    condition(status, "Stalled")?.status !== "True"
  );
}

/**
 * The stored status is of an earlier generation (the spec changed since), so holding it back
 * leaves kstatus reading the change as in progress. A Pod replaced with no spec change (a new
 * operator version, a Workspace's URL) is said at once: its stored status is of this generation.
 */
function behind(ar: AgentRuntime): boolean {
  return (ar.status?.observedGeneration ?? 0) < (ar.metadata.generation ?? 0);
}

/** A status that only says the new spec's Pod is on its way while the earlier one serves. */
function replacingCalmly(status: Status): boolean {
  const reconciling = condition(status, "Reconciling");
  return (
    serves(status) &&
    condition(status, "Ready")?.reason === AgentRuntimeReason.Replacing &&
    reconciling?.status === "True" &&
    reconciling.reason === AgentRuntimeReason.Replacing &&
    condition(status, "Stalled")?.status !== "True"
  );
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
   * only report normal progress over a status that did too (or over none), or a replacement
   * on its way over the Ready status of an earlier generation, whose Pod still serves, for FIRST_STATUS_WAIT_MS at
   * most: the Pod's events bring the AgentRuntime back, and the status written then says
   * Ready. Never while `troubled` (a Pod replaced with none serving, or recreated).
   */
  wait(ar: AgentRuntime, status: Status, troubled: boolean): number | undefined {
    const uid = ar.metadata.uid ?? "";
    const progress =
      !troubled &&
      (((!ar.status?.phase || onItsWay(ar.status)) && onItsWay(status)) ||
        (behind(ar) && serves(ar.status) && replacingCalmly(status)));
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
