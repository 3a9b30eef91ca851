// The AgentRuntime controller: keeps exactly one Pod and one Service (plus the optional
// NetworkPolicy and PersistentVolumeClaim) per AgentRuntime, replaces the Pod when its
// template changes, recreates a deleted or failed Pod with backoff, removes the Pod while
// suspended, removes orphans, and reports status. Reconcile order: get → stop if gone →
// gather inputs → children (Service → NetworkPolicy → claim → Pod) → status if changed.
// Decisions are pure (desired.ts, plan.ts, status.ts); this file and pods.ts (the Pod,
// its backoff and Events) carry them out; firststatus.ts holds back a first status that
// would only report progress.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason, ConditionType } from "../../../api/v1alpha1/index.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";
import {
  ChildWriter,
  NAME_CONFLICT_RECHECK_MS,
  controlledBy,
  isNameConflict,
} from "../../../lib/kube/children.ts";
import type { KubeApi, KubeObject } from "../../../lib/kube/client.ts";
import type { ReconcileResult } from "../../../lib/kube/controller.ts";
import type { Watches, WatchingReconciler } from "../../../lib/kube/watches.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { keyOf, splitKey } from "../../../lib/kube/informer.ts";
import type { Logger } from "../../../lib/log.ts";
import type { Metrics } from "../../../lib/kube/metrics.ts";
import {
  LABEL_AGENT,
  LABEL_TEMPLATE_HASH,
  desiredAgent,
  type AgentChildren,
  type AgentContext,
} from "./desired.ts";
import { deepFreeze } from "../../../lib/kube/typed.ts";
import { RecentMap } from "../../../lib/kube/recent.ts";
import { computeAgentStatus, type PodView } from "./status.ts";
import { AgentPods } from "./pods.ts";
import { FirstStatus } from "./firststatus.ts";
import type { AgentProbe, AgentReadiness } from "./probe.ts";
import { fleetOf, staleChild, workspaceOf } from "./inputs.ts";
import { agentIndexes, agentWatches, type AgentIndexes, type AgentInformers } from "./watches.ts";
import { errorMessage } from "../../../lib/log.ts";
import type { CachedPod } from "../../../lib/kube/projections.ts";

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

/** Longest wait for the event of a Service just written before the status is written without it. */
const SERVICE_EVENT_WAIT_MS = 1_000;

/**
 * How many AgentRuntimes' desired objects are kept at most: those of the AgentRuntimes in
 * motion (a new or changed one gets several passes within seconds). A settled one's are
 * dropped, and computed again when a resync or a change visits it. Each costs about 2.3 KB
 * of heap: for all of 10,000 AgentRuntimes that was 22 MiB.
 */
const DESIRED_KEPT = 1024;

export class AgentRuntimeReconciler implements WatchingReconciler {
  readonly name = "agentruntime";
  readonly latestPassDecides = true;
  readonly watches: Watches;
  private readonly deps: AgentControllerDeps;
  private readonly now: () => Date;
  private readonly stallAfterMs: number;
  private readonly writer: ChildWriter;
  private readonly indexes: AgentIndexes;
  private readonly pods: AgentPods;
  private readonly firstStatus: FirstStatus;
  private readonly desiredCache = new RecentMap<
    string,
    { ar: AgentRuntime; inputs: string; desired: AgentChildren }
  >(DESIRED_KEPT);

  constructor(deps: AgentControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.stallAfterMs = deps.stallAfterMs ?? STALL_AFTER_MS;
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name, () => this.now().getTime());
    const { informers } = deps;
    // Expectations: a pass before the watch event of its own write writes nothing.
    this.writer.track({
      AgentRuntime: informers.agents,
      Pod: informers.pods,
      Service: informers.services,
      NetworkPolicy: informers.networkPolicies,
      PersistentVolumeClaim: informers.claims,
    });
    this.indexes = agentIndexes(informers);
    this.pods = new AgentPods({
      writer: this.writer,
      recorder: deps.recorder,
      controllerId: deps.context.controllerId,
      now: this.now,
      ...(deps.maxBackoffMs !== undefined ? { maxBackoffMs: deps.maxBackoffMs } : {}),
    });
    this.firstStatus = new FirstStatus(this.now);
    this.watches = agentWatches(informers, this.indexes);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const { agents } = this.deps.informers;
    const ar = agents.get(namespace, name);
    if (!ar) {
      // Present but not parsing: reported by the informer, and nothing of it is touched.
      if (agents.exists(namespace, name)) return;
      this.pods.forget(key);
      this.desiredCache.delete(key);
      this.firstStatus.forgetGone(() => agents.list().map((a) => a.metadata.uid));
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
    const desired = this.desired(key, ar, workspace, fleet);
    // The Service, the NetworkPolicy and the claim-then-Pod are written side by side, each
    // whatever becomes of the others, except that no Pod is made behind someone else's
    // Service of its name: the claim and Pod wait until the Service's name is known to be free
    // or ours (a read at most, not the Service's write).
    const { informers } = this.deps;
    const netpol = informers.networkPolicies.get(namespace, desired.networkPolicyName);
    let serviceNameFree!: () => void;
    const nameChecked = new Promise<boolean>((resolve) => (serviceNameFree = () => resolve(true)));
    const serviceWork = this.writer.ensure(
      desired.service,
      informers.services.get(namespace, desired.serviceName),
      undefined,
      serviceNameFree,
    );
    const serviceName = Promise.race([
      nameChecked,
      serviceWork.then(
        () => true,
        () => false,
      ),
    ]);
    const pods = this.podsOf(key, ar, desired);
    const [service, policy, podWork] = await Promise.allSettled([
      serviceWork,
      desired.networkPolicy
        ? this.writer.ensure(desired.networkPolicy, netpol)
        : netpol && this.ownedBy(netpol, ar)
          ? this.writer.remove(netpol)
          : undefined,
      (async () => {
        // The Service's name is someone else's (reported from its write) or unknown: no Pod.
        if (!(await serviceName)) return { replacing: false, serving: undefined };
        if (desired.claim)
          await this.writer.ensure(desired.claim, informers.claims.get(namespace, desired.claimName));
        return this.pods.reconcile(key, ar, desired, pods.current, pods.others, workspaceProblem);
      })(),
    ]);
    let reconcileError: string | undefined;
    let nameConflict: string | undefined;
    let replacing = false;
    let serving: CachedPod | undefined;
    let requeueAfterMs: number | undefined;
    if (podWork.status === "fulfilled") ({ replacing, serving, requeueAfterMs } = podWork.value);
    for (const r of [service, policy, podWork]) {
      if (r.status === "fulfilled") continue;
      // A name held by someone else's object: leave it alone, say so, look again later.
      if (isNameConflict(r.reason)) nameConflict ??= r.reason.message;
      else reconcileError ??= `could not update child objects: ${errorMessage(r.reason)}`;
    }
    if (nameConflict) {
      this.deps.recorder.event(ar, "Warning", "NameConflict", nameConflict);
      requeueAfterMs = NAME_CONFLICT_RECHECK_MS;
    }

    const { current } = this.podsOf(key, ar, desired);
    const pod: PodView | undefined = current && this.ownedBy(current, ar) ? current : undefined;
    const notReady =
      !ar.spec.suspended &&
      !pod?.metadata.deletionTimestamp &&
      pod?.status?.phase === "Running" &&
      pod.status.conditions?.find((c) => c.type === "Ready")?.status !== "True";
    let agentReadiness: AgentReadiness | undefined;
    if (notReady) {
      agentReadiness = await this.deps.probe?.readiness(pod, ar.metadata.uid, ar.spec.port ?? 8080);
      requeueAfterMs = Math.min(requeueAfterMs ?? NOT_READY_RECHECK_MS, NOT_READY_RECHECK_MS);
    }
    const status = computeAgentStatus(
      ar,
      {
        ...(pod && !ar.spec.suspended ? { pod } : {}),
        podName: current?.metadata.name ?? desired.podName,
        ...(serving && !ar.spec.suspended ? { serving: serving.metadata.name! } : {}),
        serviceName: desired.serviceName,
        serviceExists: this.ownedBy(this.deps.informers.services.get(namespace, desired.serviceName), ar),
        endpoint: desired.endpoint,
        templateHash: desired.templateHash,
        ...(workspaceProblem ? { workspaceProblem } : {}),
        ...(workspaceMissing ? { workspaceMissing } : {}),
        ...(workspaceStalled ? { workspaceStalled } : {}),
        stallAfterMs: this.stallAfterMs,
        // An old Pod going away while none serves (with one serving, the new Pod's own state is told).
        replacing: replacing && !serving,
        ...(reconcileError ? { reconcileError } : {}),
        ...(nameConflict ? { nameConflict } : {}),
        ...(agentReadiness ? { agentReadiness } : {}),
      },
      this.now(),
    );
    if (status.phase === "Ready") this.pods.forget(key);
    // A wait that stalls past a bound: look again when the bound may have passed (a new Pod
    // starting beside the one that serves, too: it may be one that cannot be scheduled).
    const waiting = status.conditions?.find((c) => c.type === "Reconciling");
    if (
      waiting?.reason === AgentRuntimeReason.WorkspaceNotReady ||
      waiting?.reason === AgentRuntimeReason.Unschedulable ||
      waiting?.reason === AgentRuntimeReason.Replacing
    )
      requeueAfterMs = Math.min(requeueAfterMs ?? this.stallAfterMs, this.stallAfterMs);
    // A Pod that failed and is being recreated is news, whatever the status says meanwhile;
    // so is a replacement with no Pod serving.
    const wait = this.firstStatus.wait(
      ar,
      status,
      (replacing && serving === undefined) || this.pods.recreating(key),
    );
    if (wait !== undefined) return { requeueAfterMs: Math.min(requeueAfterMs ?? wait, wait) };
    // The Service was just written and its event is on its way: a status written now would
    // lack the endpoint and be written again when it comes (which brings us back).
    if (
      !reconcileError &&
      !nameConflict &&
      !ar.spec.suspended &&
      this.writer.awaiting(desired.service, informers.services.get(namespace, desired.serviceName))
    )
      return { requeueAfterMs: Math.min(requeueAfterMs ?? SERVICE_EVENT_WAIT_MS, SERVICE_EVENT_WAIT_MS) };
    // Settled with this pass: Ready, rolled out, no visit asked for (the event of its own
    // status write does not bring it back). Nothing moves it until a change or a resync, which
    // may as well compute its objects again: no memo is held for each of thousands of settled
    // AgentRuntimes.
    if (
      status.phase === "Ready" &&
      !status.conditions?.some(
        (c) => c.type === ConditionType.Reconciling || c.type === ConditionType.Stalled,
      ) &&
      requeueAfterMs === undefined &&
      !reconcileError
    )
      this.desiredCache.delete(key);
    await this.writeStatus(ar, status);
    if (reconcileError) throw new Error(reconcileError);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /**
   * desiredAgent's objects, computed once per version of the AgentRuntime and its inputs (the
   * cache hands out one frozen object per version): the hashes are the costly part of a pass.
   * Kept for the DESIRED_KEPT AgentRuntimes visited last, and dropped once one has settled.
   */
  private desired(
    key: string,
    ar: AgentRuntime,
    workspace: AgentContext["workspace"],
    fleet: AgentContext["fleet"],
  ): AgentChildren {
    const inputs = JSON.stringify([workspace, fleet]);
    const hit = this.desiredCache.get(key);
    if (hit?.ar === ar && hit.inputs === inputs) return hit.desired;
    const desired = deepFreeze(
      desiredAgent(ar, {
        ...this.deps.context,
        ...(workspace ? { workspace } : {}),
        ...(fleet ? { fleet } : {}),
      }),
    );
    this.desiredCache.set(key, { ar, inputs, desired });
    return desired;
  }

  /**
   * The AgentRuntime's Pods in the cache: `current`, the one of the current template's name
   * (whoever's it is), else an owned one of the current template under another name (a Pod
   * named before Pods were named by their template); `others`, its own Pods of earlier
   * templates.
   */
  private podsOf(
    key: string,
    ar: AgentRuntime,
    desired: AgentChildren,
  ): { current: CachedPod | undefined; others: CachedPod[] } {
    const { namespace } = splitKey(key);
    const owned = this.indexes.pods.get(key).filter((p) => this.ownedBy(p, ar));
    const current =
      this.deps.informers.pods.get(namespace, desired.podName) ??
      owned.find(
        (p) =>
          !p.metadata.deletionTimestamp && p.metadata.labels?.[LABEL_TEMPLATE_HASH] === desired.templateHash,
      );
    return { current, others: owned.filter((p) => p !== current) };
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
    for (const index of this.indexes.children) {
      for (const o of index.get(`${namespace}/${name}`)) {
        if (o.metadata.deletionTimestamp) continue;
        if (!staleChild(o, liveUid, this.deps.context.controllerId)) continue;
        this.deps.log.info("deleting orphan", { kind: o.kind, object: keyOf(o), agent: name });
        await this.writer.remove(o);
      }
    }
  }
}
