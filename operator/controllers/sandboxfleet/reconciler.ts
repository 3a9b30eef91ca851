// The SandboxFleet controller. A pass over a fleet: its NetworkPolicy and the name of its
// Deployment; its sandbox pods (those the Deployment made, owners.ts), read for load once
// per samplingInterval (a sample); its Workspaces released, kept on their sandbox or
// placed (plan.ts); at each sample, its size (size.ts: windows and cooldown in time, only
// ever removing empty or drained sandboxes, marked cheapest to delete); then the
// Deployment and the fleet's status. Placement lives in Workspace status, so a restarted or
// newly elected operator re-derives the same map. Decisions are pure functions; this file
// gathers their inputs and carries them out.
import type { SandboxFleet } from "../../../api/v1alpha1/index.ts";
import { ChildWriter, isNameConflict } from "../../../lib/kube/children.ts";
import type { KubeApi, KubeObject } from "../../../lib/kube/client.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";
import type { ReconcileResult } from "../../../lib/kube/controller.ts";
import type { Watches, WatchingReconciler } from "../../../lib/kube/watches.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { keyOf, splitKey } from "../../../lib/kube/informer.ts";
import type { Metrics } from "../../../lib/kube/metrics.ts";
import type { OwnerProblem } from "../../../lib/kube/owners.ts";
import type { PodAddresses } from "../../../lib/kube/podaddresses.ts";
import type { Logger } from "../../../lib/log.ts";
import type { FleetStores } from "../../broker/stores.ts";
import { LABEL_FLEET } from "./desired.ts";
import { fleetIndexes, invalidOn, membersOf, podsOf, viewsOf, type FleetIndexes } from "./inputs.ts";
import type { FleetMetrics } from "./metrics.ts";
import { FleetObjects } from "./objects.ts";
import { PendingWrites } from "./pending.ts";
import { demandOf, planWorkspaces } from "./plan.ts";
import type { FleetPolicyContext } from "./policy.ts";
import { FleetResizer } from "./resize.ts";
import type { SandboxApi } from "./sandboxapi.ts";
import { FleetSandboxes } from "./sandboxes.ts";
import { desiredReplicas } from "./scaling.ts";
import { FleetStates, sampleDue, untilNextSample } from "./state.ts";
import { fleetWatches, type FleetInformers } from "./watches.ts";
import { FleetWorkspaces, type Home } from "./workspaces.ts";

export type { FleetInformers } from "./watches.ts";

export const SANDBOX_POD_SELECTOR = `app.kubernetes.io/managed-by=agentry,${LABEL_FLEET}`;

export interface FleetControllerDeps {
  client: KubeApi;
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

export class SandboxFleetReconciler implements WatchingReconciler {
  readonly name = "sandboxfleet";
  readonly watches: Watches;
  private readonly deps: FleetControllerDeps;
  private readonly now: () => Date;
  private readonly states = new FleetStates();
  private readonly pending = new PendingWrites();
  private readonly sandboxes: FleetSandboxes;
  private readonly workspaces: FleetWorkspaces;
  private readonly objects: FleetObjects;
  private readonly resizer: FleetResizer;
  private readonly indexes: FleetIndexes;
  /** Uids of pods already reported as not the fleet's (each is reported once). */
  private readonly foreign = new Set<string>();

  constructor(deps: FleetControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    const writer = new ChildWriter(deps.client, deps.metrics, this.name, () => this.now().getTime());
    this.indexes = fleetIndexes(deps.informers);
    this.sandboxes = new FleetSandboxes(deps.sandboxes, deps.addresses, deps.log);
    this.workspaces = new FleetWorkspaces({
      ...deps,
      writer,
      sandboxes: this.sandboxes,
      now: this.now,
      pending: this.pending,
    });
    this.objects = new FleetObjects({ ...deps, writer, indexes: this.indexes });
    this.resizer = new FleetResizer({ ...deps, writer, sandboxes: this.sandboxes });
    this.watches = fleetWatches(deps.informers);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const { informers } = this.deps;
    const now = this.now();
    this.pending.prune(now.getTime());
    const fleet = informers.fleets.get(namespace, name);
    // Present but not parsing: reported by the informer; it and its workspaces are left alone.
    if (!fleet && informers.fleets.exists(namespace, name)) return;
    if (!fleet || fleet.metadata.deletionTimestamp) return this.fleetGone(key, namespace, name);
    const members = membersOf(this.indexes, fleet, this.pending, now.getTime());
    const state = this.states.for(key, fleet);
    const spec = fleet.spec;
    const port = spec.template.port;

    // 0. The fleet's own objects. A name held by an object the fleet does not control stops
    // everything (no sandbox runs unprotected, nothing is taken over) until it is resolved.
    const observed = this.objects.observe(fleet);
    let prepared: Awaited<ReturnType<FleetObjects["prepare"]>>;
    try {
      prepared = await this.objects.prepare(fleet, members, observed);
    } catch (err) {
      if (!isNameConflict(err)) throw err;
      return this.objects.reportConflict(fleet, err.message, observed, now);
    }
    let error = prepared.error;

    // 1. Its sandboxes, and a load sample when one is due.
    const stored = this.deps.stores?.configured(fleet) ?? false;
    const { pods, stopping, foreign } = podsOf(informers, this.indexes, fleet, prepared.own);
    for (const f of foreign) this.reportForeign(fleet, f.pod, f.problem);
    const sampling = sampleDue(state.sampled, fleet, now.getTime());
    if (sampling)
      state.sampled = {
        at: now.getTime(),
        generation: fleet.metadata.generation,
        loads: await this.sandboxes.loads(pods, port),
      };
    const podByName = new Map(pods.map((p) => [p.metadata.name!, p]));
    const others = invalidOn(informers, namespace, new Set(podByName.keys()));
    const views = viewsOf(fleet, pods, state.sampled?.loads, others);

    // 2. Its workspaces: released, kept, placed.
    const homes = new Set(members.flatMap((w) => (w.status?.sandboxPod ? [w.status.sandboxPod] : [])));
    const lists = await this.sandboxes.lists(pods, homes, port);
    const policy = {
      maxPerSandbox: spec.maxWorkspacesPerSandbox,
      ...spec.pressure,
      ownerlessPool: spec.ownerlessPool,
    };
    const wakeAsks = new Map<string, string>();
    for (const [pod, load] of state.sampled?.loads ?? [])
      if (podByName.has(pod)) for (const id of load.wakeRequests) wakeAsks.set(id, pod);
    const plan = planWorkspaces(
      { members, sandboxes: views, lists, stopping: stored ? stopping : new Set(), stored, policy, wakeAsks },
      now,
    );
    for (const k of state.lost.keys()) if (!members.some((w) => keyOf(w) === k)) state.lost.delete(k);
    const homeOf = (pod?: string): Home => ({
      fleet,
      pod: pod ? podByName.get(pod) : undefined,
      port,
      stored,
    });
    await this.workspaces.carryOut(plan, homeOf, state.lost);

    // 3. Its size: decided at each sample, held in between.
    const demand = demandOf(plan, policy);
    const { current } = observed;
    let replicas = current ?? desiredReplicas(spec, demand).replicas;
    if (sampling && current !== undefined) {
      const seen = { plan, lists, pods: podByName, demand, current, stored };
      replicas = await this.resizer.resize(fleet, state, seen, now);
    }

    // 4. The Deployment and the fleet's status.
    const failed = await this.objects.applyDeployment(fleet, prepared.own, current, replicas);
    if (failed) error = error ? `${error}; ${failed}` : failed;
    const placedCount = plan.sandboxes.reduce((n, v) => n + v.workspaces.length, 0);
    const status = await this.objects.writeStatus(
      fleet,
      observed,
      {
        desiredReplicas: replicas,
        workspaces: placedCount,
        waiting: plan.waiting.length,
        atMax: replicas >= spec.maxReplicas,
        ...(state.lastScale ? { lastScale: state.lastScale } : {}),
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
      waiting: plan.waiting.length,
      capacity: status.capacity ?? 0,
      sandboxes: views.map((v) => ({ pod: v.name, ...(v.load ?? {}), draining: v.draining })),
    });
    if (error) throw new Error(error);
    return { requeueAfterMs: Math.max(untilNextSample(state.sampled, fleet, this.now().getTime()), 1) };
  }

  /** The fleet is gone or going: deleted workspaces are let go, the others wait for it (and stall). */
  private async fleetGone(key: string, namespace: string, name: string): Promise<ReconcileResult | void> {
    this.states.delete(key);
    this.deps.fleetMetrics?.forget(namespace, name);
    const fleet = { metadata: { namespace, name } };
    const stallAfterMs = this.deps.stallAfterMs ?? STALL_AFTER_MS;
    let waiting = false;
    for (const ws of membersOf(this.indexes, fleet, this.pending, this.now().getTime())) {
      if (ws.metadata.deletionTimestamp) await this.workspaces.releaseFinalizer(ws);
      else {
        await this.workspaces.writeStatus(ws, { fleetMissing: true, stallAfterMs });
        waiting = true;
      }
    }
    // Workspaces wait for this fleet, and stall past the bound: look again then.
    return waiting ? { requeueAfterMs: stallAfterMs } : undefined;
  }

  /** Says once per pod that a pod with the fleet's labels is not the fleet's and is ignored. */
  private reportForeign(fleet: SandboxFleet, pod: KubeObject, problem: OwnerProblem): void {
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
}
