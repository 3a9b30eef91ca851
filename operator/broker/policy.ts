// Whether a sandbox pod may have pre-signed URLs for a workspace's objects: a pure function
// of the pod's reviewed token and the operator's cached objects (ADR 6). The pod must be the
// one the token was bound to (same uid), one its fleet's Deployment made (owner chain), and
// the workspace's placement record (status.sandboxPod) must name it. A pod that is being
// deleted still may: it flushes before it goes.
import type { SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { sandboxPodProblem } from "../../lib/kube/owners.ts";
import { LABEL_FLEET } from "../controllers/sandboxfleet/desired.ts";

/** Who the token says is calling: a pod, by its bound ServiceAccount token. */
export interface PodCaller {
  namespace: string;
  pod: string;
  uid: string;
}

export interface BrokerInputs {
  caller: PodCaller;
  /** The workspace id asked for, `<namespace>.<name>`. */
  workspaceId: string;
  /** The caller's pod from the cache (undefined when unknown). */
  pod: KubeObject | undefined;
  fleet: SandboxFleet | undefined;
  deployment: KubeObject | undefined;
  replicaSets: readonly KubeObject[];
  workspace: Workspace | undefined;
}

export type BrokerDecision =
  | { allow: true; fleet: SandboxFleet; workspace: Workspace }
  | { allow: false; status: 403 | 404; reason: string };

const deny = (status: 403 | 404, reason: string): BrokerDecision => ({ allow: false, status, reason });

/** The namespace and name of a workspace id, when it is one of namespace `ns`. */
export function workspaceNameIn(ns: string, id: string): string | undefined {
  return id.startsWith(`${ns}.`) && id.length > ns.length + 1 ? id.slice(ns.length + 1) : undefined;
}

export function decide(i: BrokerInputs): BrokerDecision {
  const { caller } = i;
  if (!workspaceNameIn(caller.namespace, i.workspaceId))
    return deny(403, `pod ${caller.namespace}/${caller.pod} may not open workspaces of another namespace`);
  if (!i.pod || i.pod.metadata.uid !== caller.uid)
    return deny(403, `pod ${caller.namespace}/${caller.pod} (uid ${caller.uid}) is not a known sandbox pod`);
  const fleetName = i.pod.metadata.labels?.[LABEL_FLEET];
  if (!fleetName || !i.fleet || i.fleet.metadata.name !== fleetName)
    return deny(403, `pod ${caller.pod} is not a sandbox of a known fleet`);
  const problem = sandboxPodProblem(i.pod, i.fleet.metadata.uid, i.deployment, i.replicaSets);
  if (problem) return deny(403, `pod ${caller.pod} is not the fleet's: ${problem.reason}`);
  const ws = i.workspace;
  if (!ws) return deny(404, `workspace ${i.workspaceId} does not exist`);
  if (ws.spec.fleetRef.name !== fleetName)
    return deny(
      403,
      `workspace ${ws.metadata.name} belongs to fleet ${ws.spec.fleetRef.name}, not ${fleetName}`,
    );
  if (ws.status?.sandboxPod !== caller.pod)
    return deny(
      403,
      `workspace ${ws.metadata.name} is placed on ${ws.status?.sandboxPod ?? "no sandbox"}, not on ${caller.pod}`,
    );
  return { allow: true, fleet: i.fleet, workspace: ws };
}
