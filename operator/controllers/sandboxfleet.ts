// The SandboxFleet controller. One reconcile of a fleet is one load sample: it reads every
// sandbox's /status, places the fleet's waiting Workspaces (serially, so nothing is placed
// twice), keeps each placed workspace present on its sandbox, scales the Deployment from
// demand through windows and cooldown, only ever removing empty idle sandboxes (drained and
// marked cheapest to delete), and writes fleet and workspace status. Placement lives in
// Workspace status, so a restarted or newly elected operator re-derives the same map.
// Only pods the fleet's Deployment made (owner chain and uids, owners.ts) count as its
// sandboxes: a pod that merely carries the fleet's labels is never dialled, never placed on.
import type { AgentRuntime, SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import { workspaceUrl } from "../../contracts/sandbox.ts";
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { isNotFound } from "../../lib/kube/client.ts";
import { sameStatus, STALL_AFTER_MS } from "../../lib/kube/conditions.ts";
import type { FleetMetrics } from "./sandboxfleet.metrics.ts";
import type { Controller, ReconcileResult, Reconciler } from "../../lib/kube/controller.ts";
import type { Recorder } from "../../lib/kube/events.ts";
import { keyOf, splitKey, type SharedInformer } from "../../lib/kube/informer.ts";
import type { Logger } from "../../lib/log.ts";
import type { Metrics } from "../../lib/kube/metrics.ts";
import {
  ChildWriter,
  NAME_CONFLICT_RECHECK_MS,
  controlledBy,
  isNameConflict,
  sameSpecHash,
} from "../../lib/kube/children.ts";
import { forEachLimit } from "../../lib/kube/concurrency.ts";
import { sandboxPodProblem } from "../../lib/kube/owners.ts";
import { placeAll, underPressure, type PlacedWorkspace, type SandboxView } from "./placement.ts";
import type { PodAddresses } from "../../lib/kube/podaddresses.ts";
import type { SandboxApi, SandboxTarget } from "./sandbox.io.ts";
import type { Released } from "../../contracts/sandbox.client.ts";
import { idleVerdict, isSuspended } from "./workspace.lifetime.ts";
import { ANNOTATION_IDLE_SUSPENDED, isIdleSuspended } from "../../api/v1alpha1/index.ts";
import {
  desiredFleetPolicy,
  fleetAgents,
  fleetPolicyName,
  type FleetPolicyContext,
} from "./sandboxfleet.policy.ts";
import { ScaleGate, desiredReplicas, safeScaleDownTarget } from "./scaling.ts";
import { validDurationMs as durationMs } from "../../lib/cli/duration.ts";
import type { FleetStores } from "../broker/stores.ts";
import { removeAllObjects } from "../../lib/objects.ts";
import { workspaceIdOf, type CreateWorkspaceRequest, type WorkspaceInfo } from "../../contracts/sandbox.ts";
import {
  ANNOTATION_DRAINING,
  DELETION_COST,
  LABEL_FLEET,
  WORKSPACE_FINALIZER,
  computeFleetStatus,
  computeWorkspaceStatus,
  deploymentName,
  desiredDeployment,
  workspaceId,
  type WorkspaceObservation,
} from "./sandboxfleet.desired.ts";
import { errorMessage } from "../../lib/log.ts";

export const SANDBOX_POD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_FLEET}`;

export interface FleetInformers {
  fleets: SharedInformer<KubeObject>;
  workspaces: SharedInformer<KubeObject>;
  deployments: SharedInformer<KubeObject>;
  /** The ReplicaSets of the fleets' Deployments (labelled like their pods). */
  replicaSets: SharedInformer<KubeObject>;
  sandboxPods: SharedInformer<KubeObject>;
  /** NetworkPolicies carrying a fleet's labels (SANDBOX_POD_SELECTOR). */
  fleetPolicies: SharedInformer<KubeObject>;
  agents: SharedInformer<KubeObject>;
}

export interface FleetControllerDeps {
  client: KubeClient;
  informers: FleetInformers;
  recorder: Recorder;
  metrics: Metrics;
  log: Logger;
  sandboxes: SandboxApi;
  addresses: PodAddresses;
  controllerId: string;
  /** Where the operator and the gateway run: the fleet NetworkPolicy's ingress peers. */
  peers: Omit<FleetPolicyContext, "controllerId">;
  /** The fleets' object stores (none: workspaces are not durable). */
  stores?: Pick<FleetStores, "configured" | "forFleet">;
  /** The store broker's URL as sandboxes reach it. */
  brokerUrl?: string;
  now?: () => Date;
  /** How long a Workspace's missing SandboxFleet is waited for before Stalled. */
  stallAfterMs?: number;
  /** Fleet gauges and placement latency (none in unit tests). */
  fleetMetrics?: FleetMetrics;
}

interface PodLike extends KubeObject {
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

interface FleetState {
  gate: ScaleGate;
  gateKey: string;
  emptySince: Map<string, number>;
  /** Occupied sandboxes chosen to leave, and since when they drain. */
  drainSince: Map<string, number>;
  /** Pods marked to leave, waiting for the mark to be visible before the Deployment shrinks. */
  pendingLeaving: Set<string>;
  /** The last scaling action (kept here: the cache may not show our own status write yet). */
  lastScale: { time: string; reason: string } | undefined;
  /** Workspaces whose sandbox a drain removed before their flush completed: what was lost. */
  lost: Map<string, string>;
}

/** Workspaces whose finalizer, sandbox call and status write are in flight at once. */
const WORKSPACE_CONCURRENCY = 16;

const asFleet = (o: KubeObject) => o as unknown as SandboxFleet;
const asWorkspace = (o: KubeObject) => o as unknown as Workspace;
const asAgent = (o: KubeObject) => o as unknown as AgentRuntime;
const isReady = (p: PodLike) =>
  p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const message = (err: unknown) => errorMessage(err);
/** The sandbox's id of the workspace with cache key "namespace/name". */
const idOfKey = (key: string) => {
  const { namespace, name } = splitKey(key);
  return workspaceIdOf(namespace, name);
};

export class SandboxFleetReconciler implements Reconciler {
  readonly name = "sandboxfleet";
  private readonly deps: FleetControllerDeps;
  private readonly now: () => Date;
  private readonly state = new Map<string, FleetState>();
  private readonly writer: ChildWriter;
  /** Uids of pods already reported as not the fleet's (each is reported once). */
  private readonly foreign = new Set<string>();

  constructor(deps: FleetControllerDeps) {
    this.deps = deps;
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name);
    this.now = deps.now ?? (() => new Date());
  }

  register(controller: Controller): void {
    const { informers } = this.deps;
    const fleetKey = (o: KubeObject) => controller.enqueue(keyOf(o));
    informers.fleets.on("add", fleetKey);
    informers.fleets.on("update", (o, old) => {
      if (!old || old.metadata.generation !== o.metadata.generation || o.metadata.deletionTimestamp)
        fleetKey(o);
    });
    informers.fleets.on("delete", fleetKey);
    const byLabel = (o: KubeObject) => {
      const fleet = o.metadata.labels?.[LABEL_FLEET];
      if (fleet) controller.enqueue(`${o.metadata.namespace}/${fleet}`);
    };
    for (const inf of [
      informers.deployments,
      informers.replicaSets,
      informers.sandboxPods,
      informers.fleetPolicies,
    ]) {
      inf.on("add", byLabel);
      inf.on("update", byLabel);
      inf.on("delete", byLabel);
    }
    const byRef = (o: KubeObject) =>
      controller.enqueue(`${o.metadata.namespace}/${asWorkspace(o).spec.fleetRef.name}`);
    informers.workspaces.on("add", byRef);
    informers.workspaces.on("update", (o, old) => {
      if (
        !old ||
        old.metadata.generation !== o.metadata.generation ||
        o.metadata.deletionTimestamp ||
        isIdleSuspended(old) !== isIdleSuspended(o) // suspended for idleness, or woken
      )
        byRef(o);
    });
    informers.workspaces.on("delete", byRef);
    // An agent's workspace decides which fleet's policy lets it in.
    const byAgent = (o: KubeObject, old?: KubeObject) => {
      for (const a of old ? [o, old] : [o]) {
        const ws = asAgent(a).spec.workspaceRef?.name;
        const w = ws ? informers.workspaces.get(a.metadata.namespace, ws) : undefined;
        if (w) byRef(w);
      }
    };
    informers.agents.on("add", byAgent);
    informers.agents.on("update", byAgent);
    informers.agents.on("delete", byAgent);
  }

  resync(controller: Controller): void {
    for (const f of this.deps.informers.fleets.list()) controller.enqueue(keyOf(f));
    for (const w of this.deps.informers.workspaces.list()) {
      controller.enqueue(`${w.metadata.namespace}/${asWorkspace(w).spec.fleetRef.name}`);
    }
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const members = this.deps.informers.workspaces
      .list(namespace)
      .map(asWorkspace)
      .filter((w) => w.spec.fleetRef.name === name);
    const raw = this.deps.informers.fleets.get(namespace, name);
    if (!raw || raw.metadata.deletionTimestamp) {
      this.state.delete(key);
      this.deps.fleetMetrics?.forget(namespace, name);
      const stallAfterMs = this.deps.stallAfterMs ?? STALL_AFTER_MS;
      let waiting = false;
      for (const ws of members) {
        if (ws.metadata.deletionTimestamp) await this.releaseFinalizer(ws);
        else {
          await this.writeWorkspaceStatus(ws, { fleetMissing: true, stallAfterMs });
          waiting = true;
        }
      }
      // Workspaces wait for this fleet, and stall past the bound: look again then.
      return waiting ? { requeueAfterMs: stallAfterMs } : undefined;
    }
    const fleet = asFleet(raw);
    const parsed = specSchemas.SandboxFleet.safeParse(raw["spec"]);
    if (parsed.success) fleet.spec = parsed.data;
    const spec = fleet.spec;
    const now = this.now();
    const state = this.stateFor(key, fleet);

    // 0. The fleet's own objects: its NetworkPolicy, and the name of its Deployment. A name
    // held by an object the fleet does not control stops everything (no sandbox runs
    // unprotected, nothing is taken over) until it is resolved.
    const deployment = this.deps.informers.deployments.get(namespace, deploymentName(fleet));
    const current = (deployment?.["spec"] as { replicas?: number } | undefined)?.replicas;
    let error: string | undefined;
    let ownDeployment: KubeObject | undefined;
    try {
      error = await this.ensurePolicy(fleet, members);
      ownDeployment = await this.writer.current(
        desiredDeployment(fleet, current ?? 0, this.deps.controllerId, this.storeAccess(fleet)),
        deployment,
      );
    } catch (err) {
      if (!isNameConflict(err)) throw err;
      return this.reportConflict(raw, fleet, err.message, deployment, now);
    }

    // 1. Sample every sandbox: the pods the fleet's Deployment made, and no other.
    const replicaSets = this.deps.informers.replicaSets.list(namespace);
    const stored = this.deps.stores?.configured(fleet) ?? false;
    // A sandbox being deleted flushes before it goes: with a store its workspaces wait for it.
    const stopping = new Set<string>();
    const pods = this.deps.informers.sandboxPods.list(namespace).filter((p) => {
      if (p.metadata.labels?.[LABEL_FLEET] !== name) return false;
      if (p.metadata.deletionTimestamp) {
        if (stored) stopping.add(p.metadata.name!);
        return false;
      }
      const problem = sandboxPodProblem(p, fleet.metadata.uid, ownDeployment, replicaSets);
      if (problem) this.reportForeign(fleet, p, problem);
      return !problem;
    }) as PodLike[];
    const podByName = new Map(pods.map((p) => [p.metadata.name!, p]));
    // Workspaces callers asked a sandbox for (by id), with that sandbox: woken if asleep.
    const wakeAsks = new Map<string, string>();
    const views: SandboxView[] = await Promise.all(
      pods.map(async (pod) => {
        const target = this.target(pod, spec.template.port);
        const ready = isReady(pod);
        const load =
          ready && target ? await this.deps.sandboxes.status(target).catch(() => undefined) : undefined;
        for (const id of load?.wakeRequests ?? []) wakeAsks.set(id, pod.metadata.name!);
        return {
          name: pod.metadata.name!,
          ready,
          draining: pod.metadata.annotations?.[ANNOTATION_DRAINING] === "true" || (load?.draining ?? false),
          ...(load ? { load: { cpu: load.cpu, memory: load.memory } } : {}),
          workspaces: [],
          dedicated: spec.ownerlessPool === "dedicated",
        };
      }),
    );
    const viewByName = new Map(views.map((v) => [v.name, v]));

    // 2. Sort workspaces: deleting, suspended, placed, waiting. The calls each one needs
    // (finalizer, sandbox, status) run a few workspaces at a time, in order per workspace.
    const pending: Workspace[] = [];
    const placed: Workspace[] = [];
    const port = spec.template.port;
    const chores: (() => Promise<void>)[] = [];
    const lists = await this.listOn(views, podByName, members, port);
    const leavingHome: Workspace[] = [];
    for (const ws of members) {
      if (ws.metadata.deletionTimestamp) {
        chores.push(() => this.releaseFinalizer(ws, podByName, port, fleet));
        continue;
      }
      const home = ws.status?.sandboxPod ? viewByName.get(ws.status.sandboxPod) : undefined;
      const idle =
        home && !isSuspended(ws)
          ? idleVerdict(ws, lists.get(home.name)?.get(workspaceId(ws)), stored, now)
          : undefined;
      const askedOn = isIdleSuspended(ws) && !ws.spec.suspended ? wakeAsks.get(workspaceId(ws)) : undefined;
      if (askedOn) {
        chores.push(() => this.wakeOnAsk(ws, askedOn));
        continue;
      }
      if (isSuspended(ws) || idle?.idle) {
        chores.push(async () => {
          await this.ensureFinalizer(ws);
          if (idle?.idle) await this.markIdle(ws, idle.message);
          // Flushed first: the workspace keeps its sandbox (and the broker lets it flush) until then.
          const released = home ? await this.release(ws, podByName.get(home.name), port, stored) : undefined;
          if (released?.state === "flushing") return;
          // The status keeps what the sandbox said of that last flush (time, bytes).
          const durability = released?.info?.durability;
          await this.writeWorkspaceStatus(ws, { store: stored, ...(durability ? { durability } : {}) });
        });
        continue;
      }
      if (!home && ws.status?.sandboxPod && stopping.has(ws.status.sandboxPod)) {
        leavingHome.push(ws);
        chores.push(() => this.ensureFinalizer(ws));
        continue;
      }
      chores.push(() => this.ensureFinalizer(ws));
      if (home) {
        home.workspaces.push({ key: keyOf(ws), ...(ws.spec.ownerId ? { ownerId: ws.spec.ownerId } : {}) });
        placed.push(ws);
      } else pending.push(ws);
    }
    await forEachLimit(chores, WORKSPACE_CONCURRENCY, (c) => c());
    for (const ws of leavingHome) {
      const pod = ws.status!.sandboxPod!;
      await this.writeWorkspaceStatus(ws, {
        placement: {
          sandboxPod: pod,
          endpoint: ws.status?.endpoint ?? "",
          placedAt: ws.status?.placedAt ?? "",
        },
        store: stored,
        leaving: `sandbox ${pod} is stopping and flushing the workspace; it is placed again once that pod is gone`,
      });
    }
    pending.sort(
      (a, b) =>
        String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)) ||
        keyOf(a).localeCompare(keyOf(b)),
    );

    // 3. Place the waiting ones, then make sure every placed workspace exists on its sandbox.
    const toPlace: PlacedWorkspace[] = pending.map((w) => {
      // A workspace a sandbox was asked for goes back there where it fits: the caller kept that address.
      const prefer = wakeAsks.get(workspaceId(w));
      return {
        key: keyOf(w),
        ...(w.spec.ownerId ? { ownerId: w.spec.ownerId } : {}),
        ...(prefer ? { prefer } : {}),
      };
    });
    const plan = placeAll(toPlace, views, {
      maxPerSandbox: spec.maxWorkspacesPerSandbox,
      cpu: spec.pressure.cpu,
      memory: spec.pressure.memory,
      ownerlessPool: spec.ownerlessPool,
    });
    const placing = new Set(pending);
    const writes: (() => Promise<void>)[] = [];
    for (const ws of [...placed, ...pending]) {
      const target =
        ws.status?.sandboxPod && viewByName.has(ws.status.sandboxPod)
          ? ws.status.sandboxPod
          : plan.placements.get(keyOf(ws));
      if (!target) {
        const waiting = plan.waiting.get(keyOf(ws)) ?? "placing";
        writes.push(() => this.writeWorkspaceStatus(ws, { waiting, store: stored }));
        continue;
      }
      if (placing.has(ws)) viewByName.get(target)!.workspaces.push({ key: keyOf(ws) });
      const pod = podByName.get(target)!;
      const known = lists.get(target)?.get(workspaceId(ws));
      writes.push(async () =>
        this.writeWorkspaceStatus(ws, {
          ...(await this.confirm(ws, pod, port, now, known, stored)),
          store: stored,
          ...(state.lost.has(keyOf(ws)) ? { lost: state.lost.get(keyOf(ws))! } : {}),
        }),
      );
    }
    await forEachLimit(writes, WORKSPACE_CONCURRENCY, (w) => w());

    // 4. Scale.
    const occupied = views.filter((v) => v.workspaces.length > 0).length;
    const pressured = views.filter(
      (v) =>
        v.workspaces.length > 0 &&
        underPressure(v, { maxPerSandbox: 0, ...spec.pressure, ownerlessPool: spec.ownerlessPool }),
    ).length;
    const target = desiredReplicas(spec, {
      occupied,
      newSandboxesNeeded: plan.newSandboxesNeeded,
      pressured,
    });
    const idleTtl = durationMs(spec.idleTTL);
    const empties = views.filter((v) => v.workspaces.length === 0);
    for (const v of views) if (v.workspaces.length > 0) state.emptySince.delete(v.name);
    for (const v of empties) if (!state.emptySince.has(v.name)) state.emptySince.set(v.name, now.getTime());
    for (const n of state.emptySince.keys()) if (!viewByName.has(n)) state.emptySince.delete(n);
    const removable = empties
      .filter((v) => now.getTime() - (state.emptySince.get(v.name) ?? now.getTime()) >= idleTtl || !v.ready)
      .sort(
        (a, b) =>
          Number(a.ready) - Number(b.ready) ||
          (state.emptySince.get(a.name) ?? 0) - (state.emptySince.get(b.name) ?? 0),
      );
    // Sandboxes holding workspaces leave only through a drain: when the target is below what
    // the empty sandboxes can give back (a pinned size, a lowered maxReplicas), the least
    // loaded occupied ones stop taking workspaces and go once drainTimeout has passed; their
    // workspaces are then placed again.
    const pinned = spec.replicas !== undefined;
    const emptyOut = pinned ? [...empties].sort((a, b) => Number(a.ready) - Number(b.ready)) : removable;
    const draining = new Set<string>();
    const drained: SandboxView[] = [];
    if (current !== undefined && target.replicas < current - emptyOut.length) {
      const occupiedViews = views
        .filter((v) => v.workspaces.length > 0)
        .sort((a, b) => a.workspaces.length - b.workspaces.length || a.name.localeCompare(b.name));
      for (const v of occupiedViews.slice(0, current - emptyOut.length - target.replicas)) {
        draining.add(v.name);
        const since = state.drainSince.get(v.name) ?? now.getTime();
        state.drainSince.set(v.name, since);
        // With a store, a drained sandbox goes once every workspace on it is flushed (the
        // drain call started those flushes); else, or when they do not finish, at drainTimeout.
        const onIt = lists.get(v.name);
        const unflushed = v.workspaces.filter((w) => {
          const d = onIt?.get(idOfKey(w.key));
          return !d?.durability || d.durability.dirty || !d.durability.durable;
        });
        const drainedSince = state.drainSince.get(v.name)! < now.getTime();
        if (stored && drainedSince && unflushed.length === 0) drained.push(v);
        else if (now.getTime() - since >= durationMs(spec.drainTimeout)) {
          drained.push(v);
          for (const w of unflushed)
            this.recordLost(
              fleet,
              state,
              w.key,
              v.name,
              onIt?.get(idOfKey(w.key)),
              stored,
              spec.drainTimeout,
            );
        }
      }
    }
    for (const n of state.drainSince.keys()) if (!draining.has(n)) state.drainSince.delete(n);
    const outgoing = [...emptyOut, ...drained];
    let replicas = target.replicas;
    if (current !== undefined) {
      const safe = safeScaleDownTarget(current, target.replicas, outgoing.length);
      let next = state.gate.observe(current, safe, now.getTime(), pinned);
      // More live pods than replicas: the ReplicaSet has not yet removed the pods of the last
      // scale-down. Counting them again as empty would give back a sandbox twice (and let it
      // pick an occupied one): hold further shrinking until they are gone.
      if (next !== undefined && next < current && pods.length > current) next = undefined;
      // The ReplicaSet picks which pods to delete by their deletion cost: shrink only once the
      // outgoing pods visibly carry the lowest cost, never before (it could pick a full one).
      if (next !== undefined && next < current) {
        const out = outgoing.slice(0, current - next);
        if (!out.every((v) => podByName.get(v.name)?.metadata.annotations?.[DELETION_COST] === "-1000")) {
          state.pendingLeaving = new Set(out.map((v) => v.name));
          next = undefined;
        }
      }
      replicas = next ?? current;
      if (next !== undefined && next !== current) {
        const reason = `${next > current ? "scaled up" : "scaled down"} ${current} → ${next}: ${target.reason}`;
        state.lastScale = { time: now.toISOString().replace(/\.\d{3}Z$/, "Z"), reason };
        this.deps.recorder.event(fleet, "Normal", next > current ? "ScaledUp" : "ScaledDown", reason);
        this.deps.log.info("scaling fleet", { fleet: key, from: current, to: next, reason: target.reason });
      }
    }
    const lastScale = state.lastScale;
    const leaving = new Set([
      ...outgoing.slice(0, Math.max(0, (current ?? replicas) - replicas)).map((v) => v.name),
      ...[...state.pendingLeaving].filter((n) => outgoing.some((v) => v.name === n)),
    ]);
    state.pendingLeaving = new Set(
      [...state.pendingLeaving].filter((n) => leaving.has(n) && replicas === current),
    );
    await this.markDeletionCosts(views, podByName, leaving, draining, spec.template.port);

    try {
      const desired = desiredDeployment(fleet, replicas, this.deps.controllerId, this.storeAccess(fleet));
      if (!ownDeployment || !sameSpecHash(ownDeployment, desired) || current !== replicas)
        await this.writer.applyOver(desired, ownDeployment);
    } catch (err) {
      const failed = `could not update Deployment ${deploymentName(fleet)}: ${message(err)}`;
      error = error ? `${error}; ${failed}` : failed;
    }
    const depStatus = (deployment?.["status"] ?? {}) as { replicas?: number; readyReplicas?: number };
    const status = computeFleetStatus(
      fleet,
      {
        replicas: depStatus.replicas ?? 0,
        readyReplicas: depStatus.readyReplicas ?? 0,
        desiredReplicas: replicas,
        workspaces: views.reduce((n, v) => n + v.workspaces.length, 0),
        waiting: plan.waiting.size,
        atMax: replicas >= spec.maxReplicas,
        ...(lastScale ? { lastScale } : {}),
        ...(error ? { error } : {}),
      },
      now,
    );
    this.deps.fleetMetrics?.observe({
      namespace,
      fleet: name,
      minReplicas: spec.minReplicas,
      maxReplicas: spec.maxReplicas,
      desiredReplicas: replicas,
      readyReplicas: status.readyReplicas ?? 0,
      placed: status.workspaces ?? 0,
      waiting: plan.waiting.size,
      capacity: status.capacity ?? 0,
      sandboxes: views.map((v) => ({ pod: v.name, ...(v.load ?? {}), draining: v.draining })),
    });
    await this.writer.writeStatus(raw, status, raw["status"]);
    if (error) throw new Error(error);
    return { requeueAfterMs: durationMs(spec.samplingInterval) };
  }

  /** How the fleet's sandboxes reach its store, when it has one. */
  private storeAccess(fleet: SandboxFleet): { brokerUrl: string } | undefined {
    return this.deps.brokerUrl && this.deps.stores?.configured(fleet)
      ? { brokerUrl: this.deps.brokerUrl }
      : undefined;
  }

  /** What each ready sandbox holding placed workspaces says of them (one call per sandbox). */
  private async listOn(
    views: SandboxView[],
    pods: Map<string, PodLike>,
    members: Workspace[],
    port: number,
  ): Promise<Map<string, Map<string, WorkspaceInfo>>> {
    const homes = new Set(members.map((w) => w.status?.sandboxPod).filter(Boolean));
    const out = new Map<string, Map<string, WorkspaceInfo>>();
    await Promise.all(
      views
        .filter((v) => v.ready && homes.has(v.name))
        .map(async (v) => {
          const target = this.target(pods.get(v.name)!, port);
          if (!target) return;
          const items = await this.deps.sandboxes.listWorkspaces(target).catch(() => undefined);
          if (items) out.set(v.name, new Map(items.map((i) => [i.id, i])));
        }),
    );
    return out;
  }

  /** A drain gave up on a workspace's flush: say what was lost, on the Workspace and in its condition. */
  private recordLost(
    fleet: SandboxFleet,
    state: FleetState,
    key: string,
    pod: string,
    info: WorkspaceInfo | undefined,
    stored: boolean,
    drainTimeout: string,
  ): void {
    if (!stored || state.lost.has(key)) return;
    const last = info?.durability?.lastFlushTime;
    const msg = `sandbox ${pod} was removed after drainTimeout (${drainTimeout}) before the workspace's flush completed: changes made ${last ? `after the flush at ${last}` : "since it was placed"} were lost${info?.durability?.message ? ` (${info.durability.message})` : ""}`;
    state.lost.set(key, msg);
    this.deps.recorder.event(fleet, "Warning", "FlushLost", `${key}: ${msg}`);
    this.deps.log.info("drain gave up on a flush", { workspace: key, pod });
  }

  /**
   * Takes the workspace off its sandbox, flushing first when there is a store: "flushing"
   * while the flush runs (the workspace keeps its sandbox until it is done).
   */
  private async release(
    ws: Workspace,
    pod: PodLike | undefined,
    port: number,
    stored: boolean,
  ): Promise<Released> {
    const target = pod ? this.target(pod, port) : undefined;
    if (!target) return { state: "gone" };
    if (!stored) {
      await this.removeFromSandbox(ws, pod, port);
      return { state: "gone" };
    }
    try {
      return await this.deps.sandboxes.releaseWorkspace(target, workspaceId(ws));
    } catch (err) {
      this.deps.log.info("could not release workspace from its sandbox", {
        workspace: keyOf(ws),
        error: message(err),
      });
      return { state: "flushing" };
    }
  }

  /** The git source of a workspace with its credentials (from its Secret), for the sandbox. */
  private async sourceOf(ws: Workspace): Promise<CreateWorkspaceRequest["source"]> {
    const git = ws.spec.source?.git;
    if (!git) return undefined;
    let credentials: { username?: string; password?: string; token?: string } | undefined;
    const ref = git.credentialsSecretRef?.name;
    if (ref) {
      const secret = await this.deps.client.request<{ data?: Record<string, string> }>(
        "GET",
        `/api/v1/namespaces/${ws.metadata.namespace}/secrets/${ref}`,
      );
      const value = (k: string) => {
        const v = secret.data?.[k];
        return v ? Buffer.from(v, "base64").toString("utf8").trim() : undefined;
      };
      credentials = {};
      for (const k of ["username", "password", "token"] as const) {
        const v = value(k);
        if (v) credentials[k] = v;
      }
    }
    return { git: { url: git.url, ref: git.ref, ...(credentials ? { credentials } : {}) } };
  }

  /**
   * Applies the fleet's NetworkPolicy (or removes ours when the fleet opts out). Returns an
   * error message when the write failed; throws NameConflictError.
   */
  private async ensurePolicy(fleet: SandboxFleet, members: Workspace[]): Promise<string | undefined> {
    const namespace = fleet.metadata.namespace!;
    const observed = this.deps.informers.fleetPolicies.get(namespace, fleetPolicyName(fleet));
    const agents = fleetAgents(
      fleet.metadata.name!,
      members,
      this.deps.informers.agents.list(namespace).map(asAgent),
    );
    const desired = desiredFleetPolicy(fleet, agents, {
      controllerId: this.deps.controllerId,
      ...this.deps.peers,
    });
    try {
      if (desired) await this.writer.ensure(desired, observed);
      else if (observed && controlledBy(observed, fleet.metadata.uid)) await this.writer.remove(observed);
      return undefined;
    } catch (err) {
      if (isNameConflict(err)) throw err;
      return `could not update NetworkPolicy ${fleetPolicyName(fleet)}: ${message(err)}`;
    }
  }

  /** Ready=False NameConflict, a Warning Event, and a look again later: nothing else is done. */
  private async reportConflict(
    raw: KubeObject,
    fleet: SandboxFleet,
    conflict: string,
    deployment: KubeObject | undefined,
    now: Date,
  ): Promise<ReconcileResult> {
    this.deps.recorder.event(fleet, "Warning", "NameConflict", conflict);
    const own = deployment && controlledBy(deployment, fleet.metadata.uid) ? deployment : undefined;
    const depStatus = (own?.["status"] ?? {}) as { replicas?: number; readyReplicas?: number };
    const replicas = (own?.["spec"] as { replicas?: number } | undefined)?.replicas ?? 0;
    const status = computeFleetStatus(
      fleet,
      {
        replicas: depStatus.replicas ?? 0,
        readyReplicas: depStatus.readyReplicas ?? 0,
        desiredReplicas: replicas,
        workspaces: 0,
        waiting: 0,
        atMax: false,
        nameConflict: conflict,
      },
      now,
    );
    await this.writer.writeStatus(raw, status, raw["status"]);
    return { requeueAfterMs: NAME_CONFLICT_RECHECK_MS };
  }

  private stateFor(key: string, fleet: SandboxFleet): FleetState {
    const s = fleet.spec;
    const gateKey = `${s.scaleUpWindow}/${s.scaleDownWindow}/${s.cooldown}`;
    let state = this.state.get(key);
    if (!state || state.gateKey !== gateKey) {
      const gate = new ScaleGate({
        scaleUpWindow: s.scaleUpWindow,
        scaleDownWindow: s.scaleDownWindow,
        cooldownMs: durationMs(s.cooldown),
      });
      state = {
        gate,
        gateKey,
        emptySince: state?.emptySince ?? new Map<string, number>(),
        drainSince: state?.drainSince ?? new Map<string, number>(),
        pendingLeaving: state?.pendingLeaving ?? new Set<string>(),
        lost: state?.lost ?? new Map<string, string>(),
        lastScale:
          state?.lastScale ??
          (fleet.status?.lastScaleTime
            ? { time: fleet.status.lastScaleTime, reason: fleet.status.lastScaleReason ?? "" }
            : undefined),
      };
      this.state.set(key, state);
    }
    return state;
  }

  /** Where to call a sandbox pod (one of the fleet's, checked by the caller), if it has an address. */
  private target(pod: PodLike, port: number): SandboxTarget | undefined {
    const address = this.deps.addresses.addressOf(pod, port);
    return address ? { namespace: pod.metadata.namespace!, pod: pod.metadata.name!, address } : undefined;
  }

  /** Says once per pod that a pod with the fleet's labels is not the fleet's and is ignored. */
  private reportForeign(
    fleet: SandboxFleet,
    pod: KubeObject,
    problem: { reason: string; settling: boolean },
  ) {
    const uid = pod.metadata.uid ?? "";
    if (this.foreign.has(uid)) return;
    const message = `Pod ${pod.metadata.name} carries the labels of this fleet but is ignored: ${problem.reason}`;
    // A pod of a new ReplicaSet may be seen before its ReplicaSet: not worth an event.
    if (problem.settling) return void this.deps.log.debug("sandbox pod not (yet) the fleet's", { message });
    if (this.foreign.size > 10_000) this.foreign.clear();
    this.foreign.add(uid);
    this.deps.log.warn("ignoring a pod that is not the fleet's", {
      fleet: keyOf(fleet),
      pod: pod.metadata.name,
    });
    this.deps.recorder.event(fleet, "Warning", "ForeignPod", message);
  }

  /** Makes sure the workspace exists on its sandbox (idempotent PUT) unless already confirmed there. */
  private async confirm(
    ws: Workspace,
    pod: PodLike,
    port: number,
    now: Date,
    known: WorkspaceInfo | undefined,
    stored: boolean,
  ): Promise<WorkspaceObservation> {
    const id = workspaceId(ws);
    const target = this.target(pod, port);
    const podIP = pod.status?.podIP ?? "";
    const sameHome = ws.status?.sandboxPod === pod.metadata.name;
    const placement = {
      sandboxPod: pod.metadata.name!,
      endpoint: workspaceUrl(`http://${podIP}:${port}`, id),
      placedAt: (sameHome && ws.status?.placedAt) || now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
    if (known)
      return { placement, confirmed: true, ...(known.durability ? { durability: known.durability } : {}) };
    // A new placement is recorded before the sandbox hears of it: the broker lets a sandbox
    // restore only a workspace whose status names it.
    if (!sameHome && stored)
      return { placement, confirmed: true, durability: { phase: "restoring", durable: false, dirty: false } };
    if (!target) return { placement, sandboxError: "the sandbox pod has no address yet" };
    try {
      const info = await this.deps.sandboxes.putWorkspace(
        target,
        id,
        ws.spec.ownerId,
        await this.sourceOf(ws),
      );
      return { placement, confirmed: true, ...(info.durability ? { durability: info.durability } : {}) };
    } catch (err) {
      return { placement, sandboxError: message(err) };
    }
  }

  private async removeFromSandbox(ws: Workspace, pod: PodLike | undefined, port: number): Promise<void> {
    const target = pod ? this.target(pod, port) : undefined;
    if (!target) return;
    await this.deps.sandboxes.deleteWorkspace(target, workspaceId(ws)).catch((err: unknown) => {
      this.deps.log.warn("could not remove workspace from sandbox", {
        workspace: keyOf(ws),
        error: message(err),
      });
    });
  }

  /** Suspends the workspace for idleness: the annotation (its time) and an Event. */
  private async markIdle(ws: Workspace, why: string): Promise<void> {
    const at = this.now()
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
    const updated = await this.writer.write("Workspace", "annotate", () =>
      this.deps.client.mergePatch(ws as unknown as KubeObject, {
        metadata: {
          annotations: { [ANNOTATION_IDLE_SUSPENDED]: at },
          resourceVersion: ws.metadata.resourceVersion,
        },
      }),
    );
    ws.metadata = (updated as unknown as Workspace).metadata;
    this.deps.recorder.event(ws, "Normal", "IdleSuspended", `suspending: ${why}`);
    this.deps.log.info("suspending an idle workspace", { workspace: keyOf(ws), why });
  }

  /** Wakes a workspace suspended for idleness that a caller asked sandbox `pod` for. */
  private async wakeOnAsk(ws: Workspace, pod: string): Promise<void> {
    await this.writer.write("Workspace", "annotate", () =>
      this.deps.client.mergePatch(ws as unknown as KubeObject, {
        metadata: {
          annotations: { [ANNOTATION_IDLE_SUSPENDED]: null },
          resourceVersion: ws.metadata.resourceVersion,
        },
      }),
    );
    const why = `a call for it reached sandbox ${pod}'s API`;
    this.deps.recorder.event(ws, "Normal", "Woken", `waking: ${why}`);
    this.deps.log.info("waking a workspace suspended for idleness", { workspace: keyOf(ws), why });
  }

  private async ensureFinalizer(ws: Workspace): Promise<void> {
    const finalizers = ws.metadata.finalizers ?? [];
    if (finalizers.includes(WORKSPACE_FINALIZER)) return;
    await this.writer.write("Workspace", "finalizer", () =>
      this.deps.client.mergePatch(ws as unknown as KubeObject, {
        metadata: {
          finalizers: [...finalizers, WORKSPACE_FINALIZER],
          resourceVersion: ws.metadata.resourceVersion,
        },
      }),
    );
  }

  /**
   * A deleted workspace: a retained one is flushed and left in the store, another one's
   * stored files are removed (by the operator, with the store's credentials); it leaves its
   * sandbox; then Kubernetes may delete it.
   */
  private async releaseFinalizer(
    ws: Workspace,
    pods?: Map<string, PodLike>,
    port = 8080,
    fleet?: SandboxFleet,
  ): Promise<void> {
    const finalizers = ws.metadata.finalizers ?? [];
    if (!finalizers.includes(WORKSPACE_FINALIZER)) return;
    const pod = ws.status?.sandboxPod ? pods?.get(ws.status.sandboxPod) : undefined;
    const stored = fleet !== undefined && (this.deps.stores?.configured(fleet) ?? false);
    if (stored && ws.spec.retain) {
      if ((await this.release(ws, pod, port, true)).state === "flushing") return;
    } else {
      await this.removeFromSandbox(ws, pod, port);
      if (stored) {
        const store = await this.deps.stores!.forFleet(fleet);
        const removed = store ? await removeAllObjects(store.objects.workspace(workspaceId(ws))) : 0;
        this.deps.log.info("removed a deleted workspace's stored files", {
          workspace: keyOf(ws),
          objects: removed,
        });
      }
    }
    await this.writer.write("Workspace", "finalizer", () =>
      this.deps.client
        .mergePatch(ws as unknown as KubeObject, {
          metadata: { finalizers: finalizers.filter((f) => f !== WORKSPACE_FINALIZER) },
        })
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        }),
    );
  }

  /** Empty pods are cheapest to delete, pods chosen to leave cheaper still (and drained); full ones dearest. */
  /**
   * Empty pods are cheapest to delete, pods chosen to leave cheaper still; full ones dearest.
   * Leaving and draining pods are marked draining (no new workspaces) and told to drain.
   */
  private async markDeletionCosts(
    views: SandboxView[],
    pods: Map<string, PodLike>,
    leaving: Set<string>,
    draining: Set<string>,
    port: number,
  ): Promise<void> {
    for (const v of views) {
      const pod = pods.get(v.name)!;
      const cost = leaving.has(v.name)
        ? "-1000"
        : v.workspaces.length > 0
          ? String(100 + v.workspaces.length)
          : "0";
      const drain = leaving.has(v.name) || draining.has(v.name) ? "true" : null;
      const annotations = pod.metadata.annotations ?? {};
      if (annotations[DELETION_COST] === cost && (annotations[ANNOTATION_DRAINING] ?? null) === drain)
        continue;
      const target = this.target(pod, port);
      if (target && drain) await this.deps.sandboxes.drain(target).catch(() => undefined);
      // A sandbox that was draining and may stay (the size was raised again) takes work again.
      if (target && !drain && annotations[ANNOTATION_DRAINING] === "true") {
        await this.deps.sandboxes.undrain(target).catch(() => undefined);
      }
      await this.writer.write("Pod", "annotate", () =>
        this.deps.client
          .mergePatch(pod, {
            metadata: { annotations: { [DELETION_COST]: cost, [ANNOTATION_DRAINING]: drain } },
          })
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          }),
      );
    }
  }

  private async writeWorkspaceStatus(ws: Workspace, o: WorkspaceObservation): Promise<void> {
    const now = this.now();
    const status = computeWorkspaceStatus(ws, o, now);
    if (sameStatus(status, ws.status)) return;
    // Ready again (or for the first time): how long it went without a sandbox.
    const readyOf = (s: typeof status | undefined) => s?.conditions?.find((c) => c.type === "Ready");
    const before = readyOf(ws.status);
    if (readyOf(status)?.status === "True" && before?.status !== "True") {
      const since = before?.lastTransitionTime ?? ws.metadata.creationTimestamp;
      if (since) this.deps.fleetMetrics?.placed((now.getTime() - new Date(since).getTime()) / 1000);
    }
    const updated = await this.writer.write("Workspace", "status", () =>
      this.deps.client.apply(
        {
          apiVersion: ws.apiVersion,
          kind: ws.kind,
          metadata: { name: ws.metadata.name, namespace: ws.metadata.namespace },
          status,
        },
        "status",
      ),
    );
    // Our next reconcile may run before the watch delivers this write: remember it now, so a
    // placement is never decided twice from a stale cache.
    ws.status = (updated as unknown as Workspace).status ?? status;
  }
}
