// Which pods the operator talks to: only pods it created, proved by the owner chain with uids,
// never by labels (anyone who can create a pod can copy labels). A sandbox pod is controlled
// by a ReplicaSet that is controlled by the fleet's Deployment, which the fleet controls; an
// agent pod is controlled by its AgentRuntime. A pod that fails the check is never dialled
// and never receives a token. Pure functions of cached objects.
import type { KubeObject } from "./client.ts";

type Owned = Pick<KubeObject, "metadata">;
type OwnerRef = NonNullable<KubeObject["metadata"]["ownerReferences"]>[number];

const controllerOf = (o: Owned): OwnerRef | undefined =>
  o.metadata.ownerReferences?.find((r) => r.controller);

/** Why a pod is refused; `settling` when the caches may simply not show its owner yet. */
export interface OwnerProblem {
  reason: string;
  settling: boolean;
}

/**
 * undefined when `pod` belongs to the fleet (uid `fleetUid`) through `deployment` and one of
 * `replicaSets`; else why not.
 */
export function sandboxPodProblem(
  pod: Owned,
  fleetUid: string | undefined,
  deployment: Owned | undefined,
  replicaSets: readonly Owned[],
): OwnerProblem | undefined {
  if (!deployment) return { reason: "the fleet has no Deployment yet", settling: true };
  const fleetRef = controllerOf(deployment);
  if (fleetRef?.kind !== "SandboxFleet" || !fleetUid || fleetRef.uid !== fleetUid)
    return {
      reason: `Deployment ${deployment.metadata.name} is not controlled by this fleet`,
      settling: false,
    };
  const rsRef = controllerOf(pod);
  if (!rsRef || rsRef.kind !== "ReplicaSet" || rsRef.apiVersion !== "apps/v1")
    return { reason: "it is not controlled by a ReplicaSet", settling: false };
  const rs = replicaSets.find((r) => r.metadata.uid === rsRef.uid);
  if (!rs) return { reason: `its ReplicaSet ${rsRef.name} (uid ${rsRef.uid}) is not known`, settling: true };
  const depRef = controllerOf(rs);
  if (depRef?.kind !== "Deployment" || depRef.uid !== deployment.metadata.uid)
    return {
      reason: `its ReplicaSet ${rs.metadata.name} is not controlled by Deployment ${deployment.metadata.name}`,
      settling: false,
    };
  return undefined;
}

/** undefined when `pod` is controlled by the AgentRuntime with uid `agentUid`; else why not. */
export function agentPodProblem(pod: Owned, agentUid: string | undefined): OwnerProblem | undefined {
  const ref = controllerOf(pod);
  if (ref?.kind !== "AgentRuntime" || !agentUid || ref.uid !== agentUid)
    return { reason: "it is not controlled by this AgentRuntime", settling: false };
  return undefined;
}
