// Which fleets a change in the cache concerns: the fleet itself (not for its own status
// writes), the fleet a child names by label (Deployment, ReplicaSets, sandbox pods, the
// NetworkPolicy), the fleet a Workspace names (on spec, deletion, idle-suspension or wake
// changes; not for our own status writes), and the fleet of an agent's workspace when the
// agent comes, goes or moves (its policy lets the agent in).
import { isIdleSuspended, type AgentRuntime, type Workspace } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { Lane } from "../../../lib/kube/queue.ts";
import { keyOf, type SharedInformer } from "../../../lib/kube/informer.ts";
import type { TypedInformer } from "../../../lib/kube/typed.ts";
import { onEvery, watchChildren, watchOwn, type Watches } from "../../../lib/kube/watches.ts";
import { LABEL_FLEET } from "./desired.ts";

export interface FleetInformers {
  fleets: TypedInformer<"SandboxFleet">;
  workspaces: TypedInformer<"Workspace">;
  deployments: SharedInformer<KubeObject>;
  /** The ReplicaSets of the fleets' Deployments (labelled like their pods). */
  replicaSets: SharedInformer<KubeObject>;
  sandboxPods: SharedInformer<KubeObject>;
  /** NetworkPolicies carrying a fleet's labels. */
  fleetPolicies: SharedInformer<KubeObject>;
  agents: TypedInformer<"AgentRuntime">;
}

const fleetOfWorkspace = (ws: Workspace) => `${ws.metadata.namespace}/${ws.spec.fleetRef.name}`;

/** What the SandboxFleet controller watches (see the top of this file). */
export function fleetWatches(informers: FleetInformers): Watches {
  return {
    register(controller) {
      watchOwn(
        informers.fleets,
        controller,
        (o, old) => old.metadata.generation !== o.metadata.generation || !!o.metadata.deletionTimestamp,
      );
      const children = [
        informers.deployments,
        informers.replicaSets,
        informers.sandboxPods,
        informers.fleetPolicies,
      ];
      watchChildren(children, controller, LABEL_FLEET, Lane.Objects);
      const byRef = (ws: Workspace) => controller.enqueue(fleetOfWorkspace(ws));
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
      // An agent's workspace decides which fleet's policy lets it in: when it comes, goes, or
      // moves (not at its other changes, nor its status writes).
      onEvery([informers.agents], (o: AgentRuntime, old?: AgentRuntime) => {
        // The same view twice: its new version does not parse, and it leaves the policy.
        const before = old !== o ? old : undefined;
        if (
          before &&
          before.spec.workspaceRef?.name === o.spec.workspaceRef?.name &&
          !before.metadata.deletionTimestamp === !o.metadata.deletionTimestamp
        )
          return;
        for (const a of before ? [o, before] : [o]) {
          const ws = a.spec.workspaceRef?.name;
          const w = ws ? informers.workspaces.get(a.metadata.namespace, ws) : undefined;
          if (w) byRef(w);
        }
      });
    },
    /** Every fleet and every fleet a Workspace names. */
    resync(controller) {
      for (const f of informers.fleets.list()) controller.enqueue(keyOf(f));
      for (const w of informers.workspaces.list()) controller.enqueue(fleetOfWorkspace(w));
    },
  };
}
