// The AgentRuntime's Pods, carried out: planPod's decision (plan.ts) turned into creates,
// deletes or a wait, with the Events that tell a person why, and the per-AgentRuntime
// backoff of a Pod that keeps failing (kept in memory: a new leader starts the backoff
// afresh, as the kubelet's own restart backoff does for a new Pod).
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { type ChildWriter, NameConflictError, controlledBy } from "../../../lib/kube/children.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { LABEL_TEMPLATE_HASH, type AgentChildren } from "./desired.ts";
import { staleChild } from "./inputs.ts";
import { planPod, type PodAction, type PodFacts } from "./plan.ts";
import { podReady, type CachedPod } from "../../../lib/kube/projections.ts";

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

  /**
   * Carries out planPod's decision about the AgentRuntime's Pods (plan.ts): `pod` is the one
   * of the current template's name, `others` its Pods of earlier templates.
   */
  async reconcile(
    key: string,
    ar: AgentRuntime,
    desired: AgentChildren,
    pod: CachedPod | undefined,
    others: CachedPod[],
    workspaceProblem: string | undefined,
  ): Promise<{ replacing: boolean; serving: CachedPod | undefined; requeueAfterMs?: number }> {
    const uid = ar.metadata.uid;
    const facts = (p: CachedPod): PodFacts => ({
      name: p.metadata.name!,
      owned: controlledBy(p, uid),
      stale: staleChild(p, uid, this.deps.controllerId),
      deleting: p.metadata.deletionTimestamp !== undefined,
      templateHash: p.metadata.labels?.[LABEL_TEMPLATE_HASH],
      phase: p.status?.phase,
      ready: podReady(p),
    });
    const plan = planPod({
      wantPod: desired.pod !== undefined,
      pod: pod && facts(pod),
      others: others.map(facts),
      templateHash: desired.templateHash,
      // The agent's own claim is ReadWriteOnce, and its data is for one agent at a time.
      overlap: desired.claim === undefined,
      workspaceProblem: workspaceProblem !== undefined,
      backoff: this.recreate.get(key),
      now: this.now().getTime(),
      maxBackoffMs: this.deps.maxBackoffMs ?? 60_000,
    });
    const podName = pod?.metadata.name ?? desired.podName;
    const serving = others.find((o) => o.metadata.name === plan.serving);
    const retire = plan.retire;
    const retired = retire
      ? Promise.all(
          others
            .filter((o) => retire.names.includes(o.metadata.name!))
            .map((o) => this.deps.writer.remove(o)),
        ).then(() => {
          const names = retire.names.join(", ");
          if (retire.why === "changed") {
            this.recreate.delete(key);
            this.deps.recorder.event(ar, "Normal", "Replacing", `Replacing Pod ${names}: the spec changed`);
          } else if (retire.why === "replaced")
            this.deps.recorder.event(
              ar,
              "Normal",
              "Replaced",
              `Replaced Pod ${names} with ${podName}: the spec changed`,
            );
          else
            this.deps.recorder.event(ar, "Normal", "Suspended", `Deleted Pod ${names}; the Service is kept`);
        })
      : undefined;
    const done = { replacing: plan.replacing, serving };
    const [result] = await Promise.all([this.carryOut(key, ar, desired, pod, plan, podName), retired]);
    return { ...done, ...result };
  }

  /** planPod's decision about the Pod of the current template. */
  private async carryOut(
    key: string,
    ar: AgentRuntime,
    desired: AgentChildren,
    pod: CachedPod | undefined,
    plan: PodAction,
    podName: string,
  ): Promise<{ requeueAfterMs?: number }> {
    switch (plan.action) {
      case "none":
        return {};
      case "wait":
        return { requeueAfterMs: plan.ms };
      case "conflict":
        throw new NameConflictError(desired.pod!, pod!);
      case "create":
        // A Pod is never changed in place (a new template is a new Pod), so it is created, in
        // one round trip; should one of that name exist after all (the cache lags, or someone
        // else's, unlabelled), create() finds out whose it is. A first Pod is the happy path,
        // told by the status; a Pod recreated after a failure is worth an Event.
        if ((await this.deps.writer.create(desired.pod!)) && plan.recreate)
          this.deps.recorder.event(ar, "Normal", "Recreated", `Created Pod ${podName} again`);
        return {};
      case "remove":
        await this.deps.writer.remove(pod!);
        if (plan.why === "suspended")
          this.deps.recorder.event(ar, "Normal", "Suspended", `Deleted Pod ${podName}; the Service is kept`);
        return {};
      case "failed":
        this.recreate.set(key, { count: plan.count, notBefore: this.now().getTime() + plan.delayMs });
        await this.deps.writer.remove(pod!);
        this.deps.recorder.event(
          ar,
          "Warning",
          "PodFailed",
          `Pod ${podName} ${plan.phase === "Failed" ? "failed" : "exited"}; recreating it in ${Math.round(plan.delayMs / 1000)}s`,
        );
        return { requeueAfterMs: plan.delayMs };
    }
  }
}
