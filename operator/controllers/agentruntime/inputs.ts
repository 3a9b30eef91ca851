// What an AgentRuntime depends on, read from the caches: its Workspace (placed, missing,
// not yet placed or stalled), the sandbox pods of that workspace's fleet, and whether a
// child is a leftover of an earlier AgentRuntime of the same name.
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { isIdleSuspended } from "../../../api/v1alpha1/index.ts";
import { controlledBy } from "../../../lib/kube/children.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { fleetSelector } from "../sandboxfleet/desired.ts";
import { ANNOTATION_AGENT_ID, ANNOTATION_CONTROLLER_ID, type AgentContext } from "./desired.ts";
import type { AgentInformers } from "./watches.ts";

/**
 * A child agentry made for an AgentRuntime of this name other than the live one (an earlier
 * object of the same name, or one deleted with its children orphaned): it carries our
 * agent-id and controller-id annotations. Anything else, labels or not, is not ours to delete.
 */
export function staleChild(o: KubeObject, liveUid: string | undefined, controllerId: string): boolean {
  const id = o.metadata.annotations?.[ANNOTATION_AGENT_ID];
  if (!id || o.metadata.annotations?.[ANNOTATION_CONTROLLER_ID] !== controllerId) return false;
  return liveUid === undefined || (id !== liveUid && !controlledBy(o, liveUid));
}

export function workspaceOf(
  informers: Pick<AgentInformers, "workspaces">,
  ar: AgentRuntime,
): {
  workspace?: AgentContext["workspace"];
  workspaceProblem?: string;
  workspaceMissing?: boolean;
  workspaceStalled?: boolean;
} {
  const ref = ar.spec.workspaceRef?.name;
  if (!ref) return {};
  const ws = informers.workspaces.get(ar.metadata.namespace, ref);
  if (!ws)
    return {
      workspaceProblem: `Workspace ${ref} does not exist; create it or fix spec.workspaceRef`,
      workspaceMissing: true,
    };
  const st = ws.status;
  const stalled = st?.conditions?.find((c) => c.type === "Stalled" && c.status === "True");
  if (stalled)
    return {
      workspaceProblem: `Workspace ${ref} cannot be placed: ${stalled.message ?? stalled.reason}`,
      workspaceStalled: true,
    };
  if (!st?.endpoint || !st.sandboxPod || (st.phase !== "Ready" && st.phase !== "Placed")) {
    if (ws.spec.suspended)
      return { workspaceProblem: `Workspace ${ref} is suspended (spec.suspended: true)` };
    if (isIdleSuspended(ws))
      return {
        workspaceProblem: `Workspace ${ref} is suspended for idleness; a task through the gateway wakes it`,
      };
    return {
      workspaceProblem: `Workspace ${ref} is not placed on a sandbox yet (phase ${st?.phase ?? "Pending"})`,
    };
  }
  return { workspace: { name: ref, endpoint: st.endpoint, sandboxPod: st.sandboxPod } };
}

/** The sandbox pods of the fleet the agent's workspace is on (labels, port), when known. */
export function fleetOf(
  informers: Pick<AgentInformers, "workspaces" | "fleets">,
  ar: AgentRuntime,
): AgentContext["fleet"] {
  const ref = ar.spec.workspaceRef?.name;
  const ws = ref ? informers.workspaces.get(ar.metadata.namespace, ref) : undefined;
  if (!ws) return undefined;
  const fleetName = ws.spec.fleetRef.name;
  const fleet = informers.fleets.get(ar.metadata.namespace, fleetName);
  return { podLabels: fleetSelector(fleetName), port: fleet?.spec.template.port ?? 8080 };
}
