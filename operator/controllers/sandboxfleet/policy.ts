// The NetworkPolicy of a SandboxFleet, as a pure function of the fleet, the AgentRuntimes
// whose workspace is on it, and where the operator and the gateway run: ingress to the
// sandbox pods, on the runtime's port, only from those. Egress is not restricted.
import type { AgentRuntime, SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { controllerRef, withSpecHash } from "../../../lib/kube/children.ts";
import { childName } from "../../../lib/kube/names.ts";
import { ANNOTATION_CONTROLLER_ID, LABEL_AGENT, MANAGED_BY } from "../agentruntime/desired.ts";
import { metricsIngress, peerOf, type PolicyPeer } from "../networkpolicy.ts";
import { fleetLabels, fleetSelector } from "./desired.ts";

export interface FleetPolicyContext {
  controllerId: string;
  gateway: PolicyPeer;
  operator?: PolicyPeer;
}

export const fleetPolicyName = (fleet: Pick<SandboxFleet, "metadata">): string =>
  childName(fleet.metadata.name!, "sandbox");

/**
 * Names of the AgentRuntimes of the fleet's namespace whose spec.workspaceRef names a
 * Workspace of this fleet, sorted (so the policy does not change with list order).
 */
export function fleetAgents(
  fleetName: string,
  workspaces: readonly Workspace[],
  agents: readonly AgentRuntime[],
): string[] {
  const onFleet = new Set(
    workspaces.filter((w) => w.spec.fleetRef.name === fleetName).map((w) => w.metadata.name),
  );
  return agents
    .filter(
      (a) => !a.metadata.deletionTimestamp && a.spec.workspaceRef && onFleet.has(a.spec.workspaceRef.name),
    )
    .map((a) => a.metadata.name!)
    .sort();
}

/** The fleet's NetworkPolicy, or undefined when spec.networkPolicy.enabled is false. */
export function desiredFleetPolicy(
  fleet: SandboxFleet,
  agents: string[],
  ctx: FleetPolicyContext,
): KubeObject | undefined {
  if (!fleet.spec.networkPolicy.enabled) return undefined;
  const name = fleet.metadata.name!;
  const from = [
    ...(ctx.operator ? [peerOf(ctx.operator)] : []),
    peerOf(ctx.gateway),
    ...agents.map((agent) => ({ podSelector: { matchLabels: { [LABEL_AGENT]: agent, ...MANAGED_BY } } })),
  ];
  return withSpecHash({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: fleetPolicyName(fleet),
      namespace: fleet.metadata.namespace,
      labels: fleetLabels(name),
      annotations: { [ANNOTATION_CONTROLLER_ID]: ctx.controllerId },
      ownerReferences: [controllerRef(fleet)],
    },
    spec: {
      podSelector: { matchLabels: fleetSelector(name) },
      policyTypes: ["Ingress"],
      ingress: [
        { from, ports: [{ port: fleet.spec.template.port, protocol: "TCP" }] },
        metricsIngress(fleet.spec.template.port),
      ],
    },
  });
}
