// The AgentRuntime's Pod, carried out: planPod's decision (plan.ts) turned into a create, a
// delete or a wait, with the Events that tell a person why, and the per-AgentRuntime
// backoff of a Pod that keeps failing (kept in memory: a new leader starts the backoff
// afresh, as the kubelet's own restart backoff does for a new Pod).
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { type ChildWriter, NameConflictError, controlledBy } from "../../../lib/kube/children.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { LABEL_TEMPLATE_HASH, type AgentChildren } from "./desired.ts";
import { staleChild } from "./inputs.ts";
import { planPod } from "./plan.ts";
import type { CachedPod } from "../../../lib/kube/projections.ts";

export interface AgentPodsDeps {
  writer: ChildWriter;
  recorder: Recorder;
  controllerId: string;
  now: () => Date;
  /** Longest wait before recreating a Pod that keeps failing. */
  maxBackoffMs?: number;
}

export class AgentPods {
  private readonly deps: AgentPodsDeps;
  private readonly now: () => Date;
  /** Per AgentRuntime: how many times its Pod had to be recreated, and when the next try may happen. */
  private readonly recreate = new Map<string, { count: number; notBefore: number }>();

  constructor(deps: AgentPodsDeps) {
    this.deps = deps;
    this.now = deps.now;
  }

  /** Whether the AgentRuntime's Pod is being recreated after a failure (its backoff runs). */
  recreating(key: string): boolean {
    return this.recreate.has(key);
  }

  /** Forgets the AgentRuntime's backoff (it is Ready, or gone). */
  forget(key: string): void {
    this.recreate.delete(key);
  }

  /** Carries out planPod's decision about the AgentRuntime's Pod (plan.ts). */
  async reconcile(
    key: string,
    ar: AgentRuntime,
    desired: AgentChildren,
    pod: CachedPod | undefined,
    workspaceProblem: string | undefined,
  ): Promise<{ replacing: boolean; requeueAfterMs?: number }> {
    const plan = planPod({
      wantPod: desired.pod !== undefined,
      pod: pod && {
        owned: controlledBy(pod, ar.metadata.uid),
        stale: staleChild(pod, ar.metadata.uid, this.deps.controllerId),
        deleting: pod.metadata.deletionTimestamp !== undefined,
        templateHash: pod.metadata.labels?.[LABEL_TEMPLATE_HASH],
        phase: pod.status?.phase,
      },
      templateHash: desired.templateHash,
      workspaceProblem: workspaceProblem !== undefined,
      backoff: this.recreate.get(key),
      now: this.now().getTime(),
      maxBackoffMs: this.deps.maxBackoffMs ?? 60_000,
    });
    const podName = desired.podName;
    switch (plan.action) {
      case "none":
        return { replacing: plan.replacing };
      case "wait":
        return { replacing: false, requeueAfterMs: plan.ms };
      case "conflict":
        throw new NameConflictError(desired.pod!, pod!);
      case "create":
        // A Pod is never changed in place (a new template replaces it), so it is created, in
        // one round trip; should one of that name exist after all (the cache lags, or someone
        // else's, unlabelled), create() finds out whose it is. A first Pod is the happy path,
        // told by the status; a Pod recreated after a failure is worth an Event.
        if ((await this.deps.writer.create(desired.pod!)) && plan.recreate)
          this.deps.recorder.event(ar, "Normal", "Recreated", `Created Pod ${podName} again`);
        return { replacing: false };
      case "remove":
        await this.deps.writer.remove(pod!);
        if (plan.why === "suspended")
          this.deps.recorder.event(ar, "Normal", "Suspended", `Deleted Pod ${podName}; the Service is kept`);
        if (plan.why === "changed") {
          this.recreate.delete(key);
          this.deps.recorder.event(ar, "Normal", "Replacing", `Replacing Pod ${podName}: the spec changed`);
        }
        return { replacing: plan.why !== "suspended" };
      case "failed":
        this.recreate.set(key, { count: plan.count, notBefore: this.now().getTime() + plan.delayMs });
        await this.deps.writer.remove(pod!);
        this.deps.recorder.event(
          ar,
          "Warning",
          "PodFailed",
          `Pod ${podName} ${plan.phase === "Failed" ? "failed" : "exited"}; recreating it in ${Math.round(plan.delayMs / 1000)}s`,
        );
        return { replacing: false, requeueAfterMs: plan.delayMs };
    }
  }
}
