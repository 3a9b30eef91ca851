// What a fleet's pass reads from the caches: its Workspaces (as this controller last wrote
// them, pending.ts), its sandbox pods (only those its Deployment made, by the owner chain
// with uids: a pod that merely carries the fleet's labels is never dialled nor placed on),
// and the sandboxes held by Workspaces whose spec does not parse (left alone, so their
// sandbox is neither given to another tenant nor removed).
import type { AgentRuntime, SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import { CacheIndex, inNamespace } from "../../../lib/kube/cacheindex.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { keyOf } from "../../../lib/kube/informer.ts";
import { controllerOf } from "../../../lib/kube/ownership.ts";
import { sandboxPodProblem, type OwnerProblem } from "../../../lib/kube/owners.ts";
import { ANNOTATION_DRAINING, LABEL_FLEET } from "./desired.ts";
import type { PendingWrites } from "./pending.ts";
import type { PlacedWorkspace, SandboxView } from "./placement.ts";
import type { SandboxPod } from "./sandboxes.ts";
import { podReady } from "../../../lib/kube/projections.ts";
import type { SandboxLoad } from "./state.ts";
import type { FleetInformers } from "./watches.ts";

/** The caches' indexes a fleet's pass reads instead of scanning its namespace. */
export interface FleetIndexes {
  /** Workspaces by `<namespace>/<SandboxFleet name>` of their fleetRef. */
  workspaces: CacheIndex<Workspace>;
  /** Sandbox pods by `<namespace>/<SandboxFleet name>` of their fleet label. */
  sandboxPods: CacheIndex<KubeObject>;
  /** AgentRuntimes by `<namespace>/<Workspace name>` of their workspaceRef. */
  agentsByWorkspace: CacheIndex<AgentRuntime>;
}

export function fleetIndexes(
  informers: Pick<FleetInformers, "workspaces" | "sandboxPods" | "agents">,
): FleetIndexes {
  return {
    workspaces: new CacheIndex(informers.workspaces, (w) => inNamespace(w, w.spec.fleetRef.name)),
    sandboxPods: new CacheIndex(informers.sandboxPods, (p) =>
      inNamespace(p, p.metadata.labels?.[LABEL_FLEET]),
    ),
    agentsByWorkspace: new CacheIndex(informers.agents, (a) => inNamespace(a, a.spec.workspaceRef?.name)),
  };
}

/** The fleet's Workspaces, each as this controller last wrote it when the cache lags. */
export function membersOf(
  indexes: Pick<FleetIndexes, "workspaces">,
  fleet: Pick<SandboxFleet, "metadata">,
  pending: PendingWrites,
  now: number,
): Workspace[] {
  return indexes.workspaces
    .get(`${fleet.metadata.namespace}/${fleet.metadata.name}`)
    .filter((w) => w.spec.fleetRef.name === fleet.metadata.name)
    .map((w) => pending.view(w, now));
}

/** The AgentRuntimes that work in one of `workspaces` (of `namespace`). */
export function agentsIn(
  indexes: Pick<FleetIndexes, "agentsByWorkspace">,
  namespace: string | undefined,
  workspaces: readonly Workspace[],
): AgentRuntime[] {
  return workspaces.flatMap((w) => indexes.agentsByWorkspace.get(`${namespace}/${w.metadata.name}`));
}

export interface FleetPods {
  /** The live sandbox pods the fleet's Deployment made. */
  pods: SandboxPod[];
  /** Its pods being deleted (with a store their workspaces wait for them to go). */
  stopping: Set<string>;
  /** Pods with the fleet's labels that are not its own, and why. */
  foreign: { pod: KubeObject; problem: OwnerProblem }[];
}

export function podsOf(
  informers: Pick<FleetInformers, "replicaSets">,
  indexes: Pick<FleetIndexes, "sandboxPods">,
  fleet: SandboxFleet,
  deployment: KubeObject | undefined,
): FleetPods {
  const namespace = fleet.metadata.namespace;
  const out: FleetPods = { pods: [], stopping: new Set(), foreign: [] };
  for (const pod of indexes.sandboxPods.get(`${namespace}/${fleet.metadata.name}`)) {
    if (pod.metadata.labels?.[LABEL_FLEET] !== fleet.metadata.name) continue;
    if (pod.metadata.deletionTimestamp) {
      out.stopping.add(pod.metadata.name!);
      continue;
    }
    // Its ReplicaSet, by the name its owner reference gives (the owner check compares uids).
    const rsName = controllerOf(pod)?.name;
    const rs = rsName !== undefined ? informers.replicaSets.get(namespace, rsName) : undefined;
    const problem = sandboxPodProblem(pod, fleet.metadata.uid, deployment, rs ? [rs] : []);
    if (problem) out.foreign.push({ pod, problem });
    else out.pods.push(pod);
  }
  return out;
}

/**
 * The workspaces whose spec does not parse that sit on one of `pods`, by sandbox: an owner
 * of their own (their ownerId when it can be read, else one no one else has).
 */
export function invalidOn(
  informers: Pick<FleetInformers, "workspaces">,
  namespace: string,
  pods: ReadonlySet<string>,
): Map<string, PlacedWorkspace[]> {
  const out = new Map<string, PlacedWorkspace[]>();
  for (const raw of informers.workspaces.listInvalid(namespace)) {
    const pod = (raw["status"] as Workspace["status"] | undefined)?.sandboxPod;
    if (typeof pod !== "string" || !pods.has(pod)) continue;
    const owner = (raw["spec"] as { ownerId?: unknown } | undefined)?.ownerId;
    const key = keyOf(raw);
    const placed = { key, ownerId: typeof owner === "string" && owner ? owner : `invalid workspace ${key}` };
    out.set(pod, [...(out.get(pod) ?? []), placed]);
  }
  return out;
}

/**
 * The fleet's sandboxes as placement sees them: ready, draining (marked, or saying so at the
 * last sample), their load at the last sample, and the workspaces of others already on them.
 */
export function viewsOf(
  fleet: SandboxFleet,
  pods: readonly SandboxPod[],
  loads: ReadonlyMap<string, SandboxLoad> | undefined,
  others: ReadonlyMap<string, PlacedWorkspace[]>,
): SandboxView[] {
  return pods.map((pod) => {
    const name = pod.metadata.name!;
    const load = loads?.get(name);
    return {
      name,
      ready: podReady(pod),
      draining: pod.metadata.annotations?.[ANNOTATION_DRAINING] === "true" || (load?.draining ?? false),
      ...(load ? { load: { cpu: load.cpu, memory: load.memory } } : {}),
      workspaces: [...(others.get(name) ?? [])],
      dedicated: fleet.spec.ownerlessPool === "dedicated",
    };
  });
}
