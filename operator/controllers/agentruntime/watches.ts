// Which AgentRuntimes a change in the cache concerns: the AgentRuntime itself (not for its
// own status writes), the owner a child names by label, the users of a Workspace, and the
// users of a fleet's workspaces (the managed NetworkPolicy reaches the fleet's port). The
// indexes that answer these without scanning a namespace are kept here too.
import type { AgentRuntime, Workspace } from "../../../api/v1alpha1/index.ts";
import { CacheIndex, inNamespace } from "../../../lib/kube/cacheindex.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import type { CachedPod } from "../../../lib/kube/projections.ts";
import { sameLabels } from "../../../lib/kube/conditions.ts";
import { keyOf, type SharedInformer } from "../../../lib/kube/informer.ts";
import type { TypedInformer } from "../../../lib/kube/typed.ts";
import {
  onEvery,
  resyncChildren,
  specOrDeletion,
  watchChildren,
  watchOwn,
  type Watches,
} from "../../../lib/kube/watches.ts";
import { LABEL_AGENT } from "./desired.ts";

export interface AgentInformers {
  agents: TypedInformer<"AgentRuntime">;
  pods: SharedInformer<CachedPod>;
  services: SharedInformer<KubeObject>;
  networkPolicies: SharedInformer<KubeObject>;
  claims: SharedInformer<KubeObject>;
  workspaces: TypedInformer<"Workspace">;
  fleets: TypedInformer<"SandboxFleet">;
}

/** The caches' indexes the AgentRuntime controller reads instead of scanning a namespace. */
export interface AgentIndexes {
  /** Pods, Services, NetworkPolicies and claims by `<namespace>/<AgentRuntime name>` (their label). */
  children: CacheIndex<KubeObject>[];
  /** The Pods of them (the first of `children`). */
  pods: CacheIndex<CachedPod>;
  /** AgentRuntimes by `<namespace>/<Workspace name>` of their workspaceRef. */
  agentsByWorkspace: CacheIndex<AgentRuntime>;
  /** Workspaces by `<namespace>/<SandboxFleet name>` of their fleetRef. */
  workspacesByFleet: CacheIndex<Workspace>;
}

export function agentIndexes(informers: AgentInformers): AgentIndexes {
  const byAgent = (o: KubeObject) => inNamespace(o, o.metadata.labels?.[LABEL_AGENT]);
  const pods = new CacheIndex(informers.pods, byAgent);
  return {
    children: [
      pods,
      ...childInformers(informers)
        .slice(1)
        .map((inf) => new CacheIndex(inf, byAgent)),
    ],
    pods,
    agentsByWorkspace: new CacheIndex(informers.agents, (a) => inNamespace(a, a.spec.workspaceRef?.name)),
    workspacesByFleet: new CacheIndex(informers.workspaces, (w) => inNamespace(w, w.spec.fleetRef.name)),
  };
}

/** The informers of the objects an AgentRuntime owns, Pods first. */
export const childInformers = (informers: AgentInformers): SharedInformer<KubeObject>[] => [
  informers.pods,
  informers.services,
  informers.networkPolicies,
  informers.claims,
];

/** What the AgentRuntime controller watches (see the top of this file). */
export function agentWatches(informers: AgentInformers, indexes: AgentIndexes): Watches {
  return {
    register(controller) {
      // Status-only updates (our own writes) need no reconcile.
      watchOwn(
        informers.agents,
        controller,
        (o, old) => specOrDeletion(o, old) || !sameLabels(old.metadata.labels, o.metadata.labels),
      );
      watchChildren(childInformers(informers), controller, LABEL_AGENT);
      const enqueueUsers = (ws: KubeObject) => {
        for (const a of indexes.agentsByWorkspace.get(keyOf(ws))) controller.enqueue(keyOf(a));
      };
      onEvery([informers.workspaces], enqueueUsers);
      // The fleet of an agent's workspace gives its policy's egress (the sandboxes' port).
      const enqueueFleetUsers = (fleet: KubeObject) => {
        for (const ws of indexes.workspacesByFleet.get(keyOf(fleet))) enqueueUsers(ws);
      };
      informers.fleets.on("add", enqueueFleetUsers);
      informers.fleets.on("update", (o, old) => {
        if (!old || old.metadata.generation !== o.metadata.generation) enqueueFleetUsers(o);
      });
    },
    /** Every AgentRuntime and every owner named by a child. */
    resync(controller) {
      for (const a of informers.agents.list()) controller.enqueue(keyOf(a));
      resyncChildren(childInformers(informers), controller, LABEL_AGENT);
    },
  };
}
