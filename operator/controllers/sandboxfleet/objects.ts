// A fleet's own objects: its NetworkPolicy, its Deployment (whose name must be held by
// nothing the fleet does not control), and its status. A name held by another's object stops
// the pass: Ready=False NameConflict, a Warning Event, and a look again later.
import type { SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import type { ChildWriter } from "../../../lib/kube/children.ts";
import {
  NAME_CONFLICT_RECHECK_MS,
  controlledBy,
  isNameConflict,
  sameSpecHash,
} from "../../../lib/kube/children.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import type { ReconcileResult } from "../../../lib/kube/controller.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { errorMessage } from "../../../lib/log.ts";
import type { FleetStores } from "../../broker/stores.ts";
import { deploymentName, desiredDeployment } from "./desired.ts";
import { desiredFleetPolicy, fleetAgents, fleetPolicyName, type FleetPolicyContext } from "./policy.ts";
import { computeFleetStatus, type FleetObservation } from "./status.ts";
import type { FleetInformers } from "./watches.ts";
import { agentsIn, type FleetIndexes } from "./inputs.ts";

export interface ObjectDeps {
  writer: ChildWriter;
  informers: Pick<FleetInformers, "deployments" | "fleetPolicies">;
  indexes: Pick<FleetIndexes, "agentsByWorkspace">;
  recorder: Recorder;
  controllerId: string;
  peers: Omit<FleetPolicyContext, "controllerId">;
  stores?: Pick<FleetStores, "configured">;
  /** The store broker's URL as sandboxes reach it. */
  brokerUrl?: string;
}

interface DeploymentParts {
  spec?: { replicas?: number };
  status?: { replicas?: number; readyReplicas?: number };
}

/** The fleet's Deployment as the cache shows it, and its size. */
export interface Observed {
  deployment: (KubeObject & DeploymentParts) | undefined;
  /** The Deployment's replicas; undefined before it exists. */
  current: number | undefined;
}

export class FleetObjects {
  private readonly deps: ObjectDeps;

  constructor(deps: ObjectDeps) {
    this.deps = deps;
  }

  observe(fleet: SandboxFleet): Observed {
    const name = deploymentName(fleet);
    const deployment: (KubeObject & DeploymentParts) | undefined = this.deps.informers.deployments.get(
      fleet.metadata.namespace,
      name,
    );
    return { deployment, current: deployment?.spec?.replicas };
  }

  /**
   * The NetworkPolicy first (no sandbox runs unprotected), then whose the Deployment's name
   * is. Returns the Deployment when the fleet controls it and any error of the policy's write;
   * throws NameConflictError.
   */
  async prepare(
    fleet: SandboxFleet,
    members: readonly Workspace[],
    observed: Observed,
  ): Promise<{ own: KubeObject | undefined; error?: string }> {
    const error = await this.ensurePolicy(fleet, members);
    const own = await this.deps.writer.current(
      this.desired(fleet, observed.current ?? 0),
      observed.deployment,
    );
    return { own, ...(error ? { error } : {}) };
  }

  /** Applies the Deployment when its spec or size differs. Returns an error message when that failed. */
  async applyDeployment(
    fleet: SandboxFleet,
    own: KubeObject | undefined,
    current: number | undefined,
    replicas: number,
  ): Promise<string | undefined> {
    try {
      const desired = this.desired(fleet, replicas);
      if (!own || !sameSpecHash(own, desired) || current !== replicas)
        await this.deps.writer.applyOver(desired, own);
      return undefined;
    } catch (err) {
      return `could not update Deployment ${deploymentName(fleet)}: ${errorMessage(err)}`;
    }
  }

  async writeStatus(
    fleet: SandboxFleet,
    observed: Observed,
    o: Omit<FleetObservation, "replicas" | "readyReplicas">,
    now: Date,
  ): Promise<ReturnType<typeof computeFleetStatus>> {
    const dep = observed.deployment?.status ?? {};
    const status = computeFleetStatus(
      fleet,
      { replicas: dep.replicas ?? 0, readyReplicas: dep.readyReplicas ?? 0, ...o },
      now,
    );
    await this.deps.writer.writeStatus(fleet, status, fleet.status);
    return status;
  }

  /** Ready=False NameConflict, a Warning Event, and a look again later: nothing else is done. */
  async reportConflict(
    fleet: SandboxFleet,
    conflict: string,
    observed: Observed,
    now: Date,
  ): Promise<ReconcileResult> {
    this.deps.recorder.event(fleet, "Warning", "NameConflict", conflict);
    const own = observed.deployment && controlledBy(observed.deployment, fleet.metadata.uid);
    await this.writeStatus(
      fleet,
      own ? observed : { deployment: undefined, current: undefined },
      {
        desiredReplicas: own ? (observed.current ?? 0) : 0,
        workspaces: 0,
        waiting: 0,
        atMax: false,
        nameConflict: conflict,
      },
      now,
    );
    return { requeueAfterMs: NAME_CONFLICT_RECHECK_MS };
  }

  private desired(fleet: SandboxFleet, replicas: number): KubeObject {
    const store =
      this.deps.brokerUrl && this.deps.stores?.configured(fleet)
        ? { brokerUrl: this.deps.brokerUrl }
        : undefined;
    return desiredDeployment(fleet, replicas, this.deps.controllerId, store);
  }

  /** Applies the fleet's NetworkPolicy (or removes ours when the fleet opts out); an error message when that failed. */
  private async ensurePolicy(
    fleet: SandboxFleet,
    members: readonly Workspace[],
  ): Promise<string | undefined> {
    const namespace = fleet.metadata.namespace;
    const observed = this.deps.informers.fleetPolicies.get(namespace, fleetPolicyName(fleet));
    const agents = fleetAgents(
      fleet.metadata.name!,
      members,
      agentsIn(this.deps.indexes, namespace, members),
    );
    const desired = desiredFleetPolicy(fleet, agents, {
      controllerId: this.deps.controllerId,
      ...this.deps.peers,
    });
    try {
      if (desired) await this.deps.writer.ensure(desired, observed);
      else if (observed && controlledBy(observed, fleet.metadata.uid))
        await this.deps.writer.remove(observed);
      return undefined;
    } catch (err) {
      if (isNameConflict(err)) throw err;
      return `could not update NetworkPolicy ${fleetPolicyName(fleet)}: ${errorMessage(err)}`;
    }
  }
}
