// The AgentRuntime controller: keeps exactly one Pod and one Service (plus the optional
// NetworkPolicy and PersistentVolumeClaim) per AgentRuntime, replaces the Pod when its
// template changes, recreates a deleted or failed Pod with backoff, removes the Pod while
// suspended, removes orphans, and reports status. Reconcile order: get → stop if gone →
// gather inputs → children (Service → NetworkPolicy → claim → Pod) → status if changed.
import type { AgentRuntime, Workspace } from "../../api/v1alpha1/index.ts";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import { ChildWriter, ownedBy } from "../../lib/kube/children.ts";
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { sameStatus } from "../../lib/kube/conditions.ts";
import type { Controller, ReconcileResult, Reconciler } from "../../lib/kube/controller.ts";
import type { Recorder } from "../../lib/kube/events.ts";
import { keyOf, splitKey, type SharedInformer } from "../../lib/kube/informer.ts";
import type { Logger } from "../../lib/log.ts";
import type { Metrics } from "../../lib/kube/metrics.ts";
import {
  ANNOTATION_AGENT_ID,
  LABEL_AGENT,
  LABEL_TEMPLATE_HASH,
  desiredAgent,
  type AgentContext,
} from "./agentruntime.desired.ts";
import { computeAgentStatus, type PodView } from "./agentruntime.status.ts";
import type { AgentProbe, AgentReadiness } from "./agentruntime.probe.ts";

export const CHILD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_AGENT}`;

export interface AgentInformers {
  agents: SharedInformer<KubeObject>;
  pods: SharedInformer<KubeObject>;
  services: SharedInformer<KubeObject>;
  networkPolicies: SharedInformer<KubeObject>;
  claims: SharedInformer<KubeObject>;
  workspaces: SharedInformer<KubeObject>;
}

export interface AgentControllerDeps {
  client: KubeClient;
  informers: AgentInformers;
  recorder: Recorder;
  metrics: Metrics;
  log: Logger;
  context: Omit<AgentContext, "workspace">;
  now?: () => Date;
  /** Longest wait before recreating a Pod that keeps failing. */
  maxBackoffMs?: number;
  /** Reads the agent's own /readyz while its Pod runs but is not ready (readinessReason). */
  probe?: AgentProbe;
}

/** How often a running but not ready agent is looked at again (its reason may change). */
const NOT_READY_RECHECK_MS = 5_000;

const asAgent = (o: KubeObject) => o as unknown as AgentRuntime;

/** Longest wait before a status deferred on the first pass is written anyway. */
const DEFERRED_STATUS_MS = 5_000;

export class AgentRuntimeReconciler implements Reconciler {
  readonly name = "agentruntime";
  private readonly deps: AgentControllerDeps;
  private readonly now: () => Date;
  private readonly writer: ChildWriter;
  /** Per AgentRuntime: how many times its Pod had to be recreated, and when the next try may happen. */
  private readonly recreate = new Map<string, { count: number; notBefore: number }>();

  constructor(deps: AgentControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name);
  }

  /** Wires informer events to the controller's queue. */
  register(controller: Controller): void {
    const { informers } = this.deps;
    const enqueueAgent = (o: KubeObject) => controller.enqueue(keyOf(o));
    informers.agents.on("add", enqueueAgent);
    informers.agents.on("update", (o, old) => {
      // Status-only updates (our own writes) need no reconcile.
      if (
        old &&
        old.metadata.generation === o.metadata.generation &&
        sameStatus(old.metadata.labels, o.metadata.labels)
      ) {
        if (old.metadata.deletionTimestamp === o.metadata.deletionTimestamp) return;
      }
      enqueueAgent(o);
    });
    informers.agents.on("delete", enqueueAgent);
    const enqueueOwner = (o: KubeObject) => {
      const agent = o.metadata.labels?.[LABEL_AGENT];
      if (agent && o.metadata.namespace) controller.enqueue(`${o.metadata.namespace}/${agent}`);
    };
    for (const inf of [informers.pods, informers.services, informers.networkPolicies, informers.claims]) {
      inf.on("add", enqueueOwner);
      inf.on("update", enqueueOwner);
      inf.on("delete", enqueueOwner);
    }
    const enqueueUsers = (ws: KubeObject) => {
      for (const a of informers.agents.list(ws.metadata.namespace)) {
        if (asAgent(a).spec.workspaceRef?.name === ws.metadata.name) enqueueAgent(a);
      }
    };
    informers.workspaces.on("add", enqueueUsers);
    informers.workspaces.on("update", enqueueUsers);
    informers.workspaces.on("delete", enqueueUsers);
  }

  /** Enqueues every AgentRuntime and every owner named by a child (a full resync). */
  resync(controller: Controller): void {
    const { informers } = this.deps;
    for (const a of informers.agents.list()) controller.enqueue(keyOf(a));
    for (const inf of [informers.pods, informers.services, informers.networkPolicies, informers.claims]) {
      for (const o of inf.list()) {
        const agent = o.metadata.labels?.[LABEL_AGENT];
        if (agent) controller.enqueue(`${o.metadata.namespace}/${agent}`);
      }
    }
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const cached = this.deps.informers.agents.get(namespace, name);
    if (!cached) {
      this.recreate.delete(key);
      await this.removeOrphans(namespace, name, undefined);
      return;
    }
    if (cached.metadata.deletionTimestamp) return;
    const parsed = specSchemas.AgentRuntime.safeParse(cached["spec"]);
    const ar = asAgent(cached);
    if (parsed.success) ar.spec = parsed.data;
    await this.removeOrphans(namespace, name, cached.metadata.uid);

    const { workspace, workspaceProblem } = this.workspaceOf(ar);
    const desired = desiredAgent(ar, { ...this.deps.context, ...(workspace ? { workspace } : {}) });
    let reconcileError: string | undefined;
    let replacing = false;
    let requeueAfterMs: number | undefined;
    // Whether this pass created or changed a child (the Service, NetworkPolicy, claim or Pod);
    // every ensure runs whatever the earlier ones did.
    let applied = false;
    try {
      applied =
        (await this.ensure(
          ar,
          desired.service,
          this.deps.informers.services.get(namespace, desired.serviceName),
        )) || applied;
      const netpol = this.deps.informers.networkPolicies.get(namespace, desired.networkPolicyName);
      if (desired.networkPolicy) applied = (await this.ensure(ar, desired.networkPolicy, netpol)) || applied;
      else if (netpol && this.ownedBy(netpol, ar)) await this.remove(netpol);
      if (desired.claim)
        applied =
          (await this.ensure(
            ar,
            desired.claim,
            this.deps.informers.claims.get(namespace, desired.claimName),
          )) || applied;

      const pod = this.deps.informers.pods.get(namespace, desired.podName);
      const result = await this.reconcilePod(key, ar, desired, pod, workspaceProblem);
      replacing = result.replacing;
      requeueAfterMs = result.requeueAfterMs;
      applied = result.applied === true || applied;
    } catch (err) {
      reconcileError = `could not update child objects: ${err instanceof Error ? err.message : String(err)}`;
    }

    const pod = this.deps.informers.pods.get(namespace, desired.podName) as PodView | undefined;
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
        serviceExists: this.deps.informers.services.get(namespace, desired.serviceName) !== undefined,
        endpoint: desired.endpoint,
        templateHash: desired.templateHash,
        ...(workspaceProblem ? { workspaceProblem } : {}),
        replacing,
        ...(reconcileError ? { reconcileError } : {}),
        ...(agentReadiness ? { agentReadiness } : {}),
      },
      this.now(),
    );
    if (status.phase === "Ready") this.recreate.delete(key);
    if (applied && !reconcileError && !ar.status?.phase && status.phase === "Pending") {
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

  private workspaceOf(ar: AgentRuntime): {
    workspace?: AgentContext["workspace"];
    workspaceProblem?: string;
  } {
    const ref = ar.spec.workspaceRef?.name;
    if (!ref) return {};
    const ws = this.deps.informers.workspaces.get(ar.metadata.namespace, ref) as unknown as
      Workspace | undefined;
    if (!ws)
      return { workspaceProblem: `Workspace ${ref} does not exist; create it or fix spec.workspaceRef` };
    const st = ws.status;
    if (!st?.endpoint || !st.sandboxPod || (st.phase !== "Ready" && st.phase !== "Placed")) {
      return {
        workspaceProblem: `Workspace ${ref} is not placed on a sandbox yet (phase ${st?.phase ?? "Pending"})`,
      };
    }
    return { workspace: { name: ref, endpoint: st.endpoint, sandboxPod: st.sandboxPod } };
  }

  private async reconcilePod(
    key: string,
    ar: AgentRuntime,
    desired: ReturnType<typeof desiredAgent>,
    pod: KubeObject | undefined,
    workspaceProblem: string | undefined,
  ): Promise<{ replacing: boolean; requeueAfterMs?: number; applied?: boolean }> {
    if (!desired.pod) {
      if (pod && this.ownedBy(pod, ar)) {
        await this.remove(pod);
        this.deps.recorder.event(
          ar as never,
          "Normal",
          "Suspended",
          `Deleted Pod ${desired.podName}; the Service is kept`,
        );
      }
      return { replacing: false };
    }
    if (!pod) {
      if (workspaceProblem) return { replacing: false };
      const attempt = this.recreate.get(key);
      const wait = attempt ? attempt.notBefore - Date.now() : 0;
      if (wait > 0) return { replacing: false, requeueAfterMs: wait };
      await this.write("Pod", "apply", () => this.deps.client.apply(desired.pod!));
      this.deps.recorder.event(
        ar as never,
        "Normal",
        attempt ? "Recreated" : "Created",
        `Created Pod ${desired.podName}`,
      );
      return { replacing: false, applied: true };
    }
    if (pod.metadata.deletionTimestamp) return { replacing: true };
    if (!this.ownedBy(pod, ar)) {
      await this.remove(pod);
      return { replacing: true };
    }
    if (pod.metadata.labels?.[LABEL_TEMPLATE_HASH] !== desired.templateHash) {
      await this.remove(pod);
      this.recreate.delete(key);
      this.deps.recorder.event(
        ar as never,
        "Normal",
        "Replacing",
        `Replacing Pod ${desired.podName}: the spec changed`,
      );
      return { replacing: true };
    }
    const phase = (pod as PodView).status?.phase;
    if (phase === "Failed" || phase === "Succeeded") {
      const prior = this.recreate.get(key);
      const count = (prior?.count ?? 0) + 1;
      const delay = Math.min(this.deps.maxBackoffMs ?? 60_000, 1000 * 2 ** (count - 1));
      this.recreate.set(key, { count, notBefore: Date.now() + delay });
      await this.remove(pod);
      this.deps.recorder.event(
        ar as never,
        "Warning",
        "PodFailed",
        `Pod ${desired.podName} ${phase === "Failed" ? "failed" : "exited"}; recreating it in ${Math.round(delay / 1000)}s`,
      );
      return { replacing: false, requeueAfterMs: delay };
    }
    return { replacing: false };
  }

  /** Applies `desired` unless the observed object already carries the same spec hash. */
  private async ensure(
    ar: AgentRuntime,
    desired: KubeObject,
    observed: KubeObject | undefined,
  ): Promise<boolean> {
    return this.writer.ensure(ar.metadata.uid, desired, observed);
  }

  private ownedBy(obj: KubeObject, ar: AgentRuntime): boolean {
    return ownedBy(obj, ar.metadata.uid);
  }

  private async remove(obj: KubeObject): Promise<void> {
    await this.writer.remove(obj);
  }

  private async write<T>(kind: string, verb: string, fn: () => Promise<T>): Promise<T> {
    return this.writer.write(kind, verb, fn);
  }

  private async writeStatus(ar: AgentRuntime, status: AgentRuntime["status"]): Promise<void> {
    await this.writer.writeStatus(ar as unknown as KubeObject, status, ar.status);
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
        const owned = liveUid !== undefined && o.metadata.ownerReferences?.some((r) => r.uid === liveUid);
        const sameAgent = liveUid !== undefined && o.metadata.annotations?.[ANNOTATION_AGENT_ID] === liveUid;
        if (owned || sameAgent) continue;
        this.deps.log.info("deleting orphan", { kind: o.kind, object: keyOf(o), agent: name });
        await this.remove(o);
      }
    }
  }
}
