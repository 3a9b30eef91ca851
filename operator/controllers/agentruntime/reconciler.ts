// The AgentRuntime controller: keeps exactly one Pod and one Service (plus the optional
// NetworkPolicy and PersistentVolumeClaim) per AgentRuntime, replaces the Pod when its
// template changes, recreates a deleted or failed Pod with backoff, removes the Pod while
// suspended, removes orphans, and reports status. Reconcile order: get → stop if gone →
// gather inputs → children (Service → NetworkPolicy → claim → Pod) → status if changed.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";
import {
  ChildWriter,
  NAME_CONFLICT_RECHECK_MS,
  NameConflictError,
  controlledBy,
  isNameConflict,
} from "../../../lib/kube/children.ts";
import type { KubeApi, KubeObject } from "../../../lib/kube/client.ts";
import type { Controller, ReconcileResult, Reconciler } from "../../../lib/kube/controller.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { keyOf, splitKey } from "../../../lib/kube/informer.ts";
import type { Logger } from "../../../lib/log.ts";
import type { Metrics } from "../../../lib/kube/metrics.ts";
import { LABEL_AGENT, LABEL_TEMPLATE_HASH, desiredAgent, type AgentContext } from "./desired.ts";
import { computeAgentStatus, type PodView } from "./status.ts";
import { planPod } from "./plan.ts";
import type { AgentProbe, AgentReadiness } from "./probe.ts";
import { fleetOf, staleChild, workspaceOf } from "./inputs.ts";
import { registerWatches, resyncAll, type AgentInformers } from "./watches.ts";
import { errorMessage } from "../../../lib/log.ts";

export { staleChild } from "./inputs.ts";
export type { AgentInformers } from "./watches.ts";

export const CHILD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_AGENT}`;

export interface AgentControllerDeps {
  client: KubeApi;
  informers: AgentInformers;
  recorder: Recorder;
  metrics: Metrics;
  log: Logger;
  context: Omit<AgentContext, "workspace" | "fleet">;
  now?: () => Date;
  /** Longest wait before recreating a Pod that keeps failing. */
  maxBackoffMs?: number;
  /** Reads the agent's own /readyz while its Pod runs but is not ready (readinessReason). */
  probe?: AgentProbe;
  /** How long a wait on someone else (a missing Workspace, no node for the Pod) lasts before Stalled. */
  stallAfterMs?: number;
}

/** How often a running but not ready agent is looked at again (its reason may change). */
const NOT_READY_RECHECK_MS = 5_000;

/** Longest wait before a status deferred on the first pass is written anyway. */
const DEFERRED_STATUS_MS = 5_000;

export class AgentRuntimeReconciler implements Reconciler {
  readonly name = "agentruntime";
  private readonly deps: AgentControllerDeps;
  private readonly now: () => Date;
  private readonly stallAfterMs: number;
  private readonly writer: ChildWriter;
  /** Per AgentRuntime: how many times its Pod had to be recreated, and when the next try may happen. */
  private readonly recreate = new Map<string, { count: number; notBefore: number }>();

  constructor(deps: AgentControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.stallAfterMs = deps.stallAfterMs ?? STALL_AFTER_MS;
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name);
  }

  /** Wires informer events to the controller's queue. */
  register(controller: Controller): void {
    registerWatches(this.deps.informers, controller);
  }

  /** Enqueues every AgentRuntime and every owner named by a child (a full resync). */
  resync(controller: Controller): void {
    resyncAll(this.deps.informers, controller);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const { agents } = this.deps.informers;
    const ar = agents.get(namespace, name);
    if (!ar) {
      // Present but not parsing: reported by the informer, and nothing of it is touched.
      if (agents.exists(namespace, name)) return;
      this.recreate.delete(key);
      await this.removeOrphans(namespace, name, undefined);
      return;
    }
    if (ar.metadata.deletionTimestamp) return;
    await this.removeOrphans(namespace, name, ar.metadata.uid);

    const { workspace, workspaceProblem, workspaceMissing, workspaceStalled } = workspaceOf(
      this.deps.informers,
      ar,
    );
    const fleet = fleetOf(this.deps.informers, ar);
    const desired = desiredAgent(ar, {
      ...this.deps.context,
      ...(workspace ? { workspace } : {}),
      ...(fleet ? { fleet } : {}),
    });
    let reconcileError: string | undefined;
    let nameConflict: string | undefined;
    let replacing = false;
    let requeueAfterMs: number | undefined;
    // Whether this pass created or changed a child (the Service, NetworkPolicy, claim or Pod);
    // every ensure runs whatever the earlier ones did.
    let applied = false;
    try {
      applied =
        (await this.writer.ensure(
          desired.service,
          this.deps.informers.services.get(namespace, desired.serviceName),
        )) || applied;
      const netpol = this.deps.informers.networkPolicies.get(namespace, desired.networkPolicyName);
      if (desired.networkPolicy)
        applied = (await this.writer.ensure(desired.networkPolicy, netpol)) || applied;
      else if (netpol && this.ownedBy(netpol, ar)) await this.writer.remove(netpol);
      if (desired.claim)
        applied =
          (await this.writer.ensure(
            desired.claim,
            this.deps.informers.claims.get(namespace, desired.claimName),
          )) || applied;

      const pod = this.deps.informers.pods.get(namespace, desired.podName);
      const result = await this.reconcilePod(key, ar, desired, pod, workspaceProblem);
      replacing = result.replacing;
      requeueAfterMs = result.requeueAfterMs;
      applied = result.applied === true || applied;
    } catch (err) {
      // A name held by someone else's object: leave it alone, say so, look again later.
      if (isNameConflict(err)) nameConflict = err.message;
      else reconcileError = `could not update child objects: ${errorMessage(err)}`;
    }
    if (nameConflict) {
      this.deps.recorder.event(ar, "Warning", "NameConflict", nameConflict);
      requeueAfterMs = NAME_CONFLICT_RECHECK_MS;
    }

    const cachedPod = this.deps.informers.pods.get(namespace, desired.podName);
    const pod = (cachedPod && this.ownedBy(cachedPod, ar) ? cachedPod : undefined) as PodView | undefined;
    const notReady =
      !ar.spec.suspended &&
      !pod?.metadata.deletionTimestamp &&
      pod?.status?.phase === "Running" &&
      pod.status.conditions?.find((c) => c.type === "Ready")?.status !== "True";
    let agentReadiness: AgentReadiness | undefined;
    if (notReady) {
      agentReadiness = await this.deps.probe?.readiness(pod as never, ar.metadata.uid, ar.spec.port ?? 8080);
      requeueAfterMs = Math.min(requeueAfterMs ?? NOT_READY_RECHECK_MS, NOT_READY_RECHECK_MS);
    }
    const status = computeAgentStatus(
      ar,
      {
        ...(pod && !ar.spec.suspended ? { pod } : {}),
        podName: desired.podName,
        serviceName: desired.serviceName,
        serviceExists: this.ownedBy(this.deps.informers.services.get(namespace, desired.serviceName), ar),
        endpoint: desired.endpoint,
        templateHash: desired.templateHash,
        ...(workspaceProblem ? { workspaceProblem } : {}),
        ...(workspaceMissing ? { workspaceMissing } : {}),
        ...(workspaceStalled ? { workspaceStalled } : {}),
        stallAfterMs: this.stallAfterMs,
        replacing,
        ...(reconcileError ? { reconcileError } : {}),
        ...(nameConflict ? { nameConflict } : {}),
        ...(agentReadiness ? { agentReadiness } : {}),
      },
      this.now(),
    );
    if (status.phase === "Ready") this.recreate.delete(key);
    // A wait that stalls past a bound: look again when the bound may have passed.
    const waiting = status.conditions?.find((c) => c.type === "Reconciling");
    if (
      waiting?.reason === AgentRuntimeReason.WorkspaceNotReady ||
      waiting?.reason === AgentRuntimeReason.Unschedulable
    )
      requeueAfterMs = Math.min(requeueAfterMs ?? this.stallAfterMs, this.stallAfterMs);
    if (applied && !reconcileError && !nameConflict && !ar.status?.phase && status.phase === "Pending") {
      // The first pass over a new AgentRuntime: the children it just created come back as
      // watch events that enqueue it again, and the status written then already sees them.
      // A status written now ("creating Pod", no Service yet) would be superseded at once:
      // one write per object saved. The requeue is a backstop should no event come.
      return { requeueAfterMs: Math.min(requeueAfterMs ?? DEFERRED_STATUS_MS, DEFERRED_STATUS_MS) };
    }
    await this.writeStatus(ar, status);
    if (reconcileError) throw new Error(reconcileError);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /** Carries out planPod's decision about the Pod (plan.ts). */
  private async reconcilePod(
    key: string,
    ar: AgentRuntime,
    desired: ReturnType<typeof desiredAgent>,
    pod: KubeObject | undefined,
    workspaceProblem: string | undefined,
  ): Promise<{ replacing: boolean; requeueAfterMs?: number; applied?: boolean }> {
    const plan = planPod({
      wantPod: desired.pod !== undefined,
      pod: pod && {
        owned: this.ownedBy(pod, ar),
        stale: staleChild(pod, ar.metadata.uid, this.deps.context.controllerId),
        deleting: pod.metadata.deletionTimestamp !== undefined,
        templateHash: pod.metadata.labels?.[LABEL_TEMPLATE_HASH],
        phase: (pod as PodView).status?.phase,
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
        // Not in the cache: a Pod of that name may still exist (someone else's, unlabelled).
        if (!(await this.writer.ensure(desired.pod!, undefined))) return { replacing: false };
        this.deps.recorder.event(
          ar,
          "Normal",
          plan.recreate ? "Recreated" : "Created",
          `Created Pod ${podName}`,
        );
        return { replacing: false, applied: true };
      case "remove":
        await this.writer.remove(pod!);
        if (plan.why === "suspended")
          this.deps.recorder.event(ar, "Normal", "Suspended", `Deleted Pod ${podName}; the Service is kept`);
        if (plan.why === "changed") {
          this.recreate.delete(key);
          this.deps.recorder.event(ar, "Normal", "Replacing", `Replacing Pod ${podName}: the spec changed`);
        }
        return { replacing: plan.why !== "suspended" };
      case "failed":
        this.recreate.set(key, { count: plan.count, notBefore: this.now().getTime() + plan.delayMs });
        await this.writer.remove(pod!);
        this.deps.recorder.event(
          ar,
          "Warning",
          "PodFailed",
          `Pod ${podName} ${plan.phase === "Failed" ? "failed" : "exited"}; recreating it in ${Math.round(plan.delayMs / 1000)}s`,
        );
        return { replacing: false, requeueAfterMs: plan.delayMs };
    }
  }

  /** Controlled by this AgentRuntime (owner reference with controller=true and its uid). */
  private ownedBy(obj: KubeObject | undefined, ar: AgentRuntime): boolean {
    return obj !== undefined && controlledBy(obj, ar.metadata.uid);
  }

  private async writeStatus(ar: AgentRuntime, status: AgentRuntime["status"]): Promise<void> {
    await this.writer.writeStatus(ar, status, ar.status);
  }

  /**
   * Deletes children labelled for this AgentRuntime name that no live AgentRuntime owns:
   * left from an earlier object of the same name, or whose owner was deleted while
   * garbage collection could not act (no owner reference).
   */
  private async removeOrphans(namespace: string, name: string, liveUid: string | undefined): Promise<void> {
    const { informers } = this.deps;
    for (const inf of [informers.pods, informers.services, informers.networkPolicies, informers.claims]) {
      for (const o of inf.list(namespace)) {
        if (o.metadata.labels?.[LABEL_AGENT] !== name || o.metadata.deletionTimestamp) continue;
        if (!staleChild(o, liveUid, this.deps.context.controllerId)) continue;
        this.deps.log.info("deleting orphan", { kind: o.kind, object: keyOf(o), agent: name });
        await this.writer.remove(o);
      }
    }
  }
}
