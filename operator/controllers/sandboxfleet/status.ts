// The status of a SandboxFleet and of its Workspaces, as pure functions of what the
// reconciler observed and the time: phase, Ready/Reconciling/Stalled with a reason a person
// can act on, the Durable condition of a workspace's files, and the printer columns' numbers.
import type {
  SandboxFleet,
  SandboxFleetStatus,
  Workspace,
  WorkspaceStatus,
} from "../../../api/v1alpha1/index.ts";
import {
  ANNOTATION_IDLE_SUSPENDED,
  DurableReason,
  isIdleSuspended,
  SandboxFleetReason,
  WorkspaceConditionType,
  WorkspaceReason,
} from "../../../api/v1alpha1/index.ts";
import type { Durability } from "../../../contracts/sandbox.ts";
import {
  mergeConditions,
  type Progress,
  STALL_AFTER_MS,
  standardConditions,
  waitedTooLong,
} from "../../../lib/kube/conditions.ts";
import { isSuspended } from "../workspace.lifetime.ts";
import { deploymentName, fleetSelector } from "./desired.ts";

export interface FleetObservation {
  replicas: number;
  readyReplicas: number;
  desiredReplicas: number;
  workspaces: number;
  waiting: number;
  lastScale?: { time: string; reason: string };
  atMax: boolean;
  error?: string;
  /** The Deployment's or NetworkPolicy's name is held by an object the fleet does not control. */
  nameConflict?: string;
}

export function computeFleetStatus(fleet: SandboxFleet, o: FleetObservation, now: Date): SandboxFleetStatus {
  const perSandbox = fleet.spec.maxWorkspacesPerSandbox;
  let progress: Progress = "Reconciling";
  let reason: string = SandboxFleetReason.Scaling;
  let message = `${o.readyReplicas}/${o.desiredReplicas} sandboxes ready`;
  if (o.nameConflict) {
    progress = "Stalled";
    reason = SandboxFleetReason.NameConflict;
    message = o.nameConflict;
  } else if (o.error) {
    reason = SandboxFleetReason.ReconcileError;
    message = o.error;
  } else if (o.waiting > 0 && o.atMax) {
    // Workspaces wait and the fleet may not grow: someone has to raise a limit (or free room).
    progress = "Stalled";
    reason = SandboxFleetReason.AtCapacity;
    message = `${o.waiting} workspace(s) wait for room and the fleet is at maxReplicas (${fleet.spec.maxReplicas}); raise spec.maxReplicas or spec.maxWorkspacesPerSandbox`;
  } else if (o.readyReplicas >= o.desiredReplicas && o.replicas === o.desiredReplicas) {
    progress = "Current";
    reason = SandboxFleetReason.FleetReady;
    message = `${o.readyReplicas} sandboxes ready, ${o.workspaces} workspace(s) placed`;
  }
  const generation = fleet.metadata.generation;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    replicas: o.replicas,
    readyReplicas: o.readyReplicas,
    desiredReplicas: o.desiredReplicas,
    workspaces: o.workspaces,
    capacity: o.readyReplicas * perSandbox,
    selector: Object.entries(fleetSelector(fleet.metadata.name!))
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
    deploymentName: deploymentName(fleet),
    ...(o.lastScale ? { lastScaleTime: o.lastScale.time, lastScaleReason: o.lastScale.reason } : {}),
    conditions: mergeConditions(
      fleet.status?.conditions,
      standardConditions({ progress, reason, message }, generation),
      now,
    ),
  };
}

export interface WorkspaceObservation {
  fleetMissing?: boolean;
  placement?: { sandboxPod: string; endpoint: string; placedAt: string };
  /** The sandbox runtime confirmed the workspace exists. */
  confirmed?: boolean;
  waiting?: string;
  sandboxError?: string;
  /** The fleet has an object store (its own or the install's default). */
  store?: boolean;
  /** What the sandbox says of the workspace's files (restore, flushes). */
  durability?: Durability;
  /** The home sandbox is stopping: the workspace waits for it to go before it moves. */
  leaving?: string;
  /** Changes that a drain gave up on (Durable=False, Lost), until the next flush. */
  lost?: string;
  /** How long a missing SandboxFleet is waited for before Stalled. */
  stallAfterMs?: number;
}

const GIT_REASONS = new Set([
  "InvalidURL",
  "CloneFailed",
  "RefNotFound",
  "AuthFailed",
  "TooLarge",
  "Timeout",
]);

/** The Durable condition: whether the files are in the store, and if not, why. */
function durableCondition(
  ws: Workspace,
  o: WorkspaceObservation,
): { status: "True" | "False"; reason: string; message: string } | undefined {
  if (o.fleetMissing) return undefined;
  if (!o.store)
    return {
      status: "False",
      reason: DurableReason.NoStore,
      message:
        "no object store is configured for the fleet or the agentry install: the files live only in the sandbox pod and are lost when it goes (drain, scale-in, rollout, node loss)",
    };
  const d = o.durability;
  if (o.lost && !(d?.durable && !d.dirty))
    return { status: "False", reason: DurableReason.Lost, message: o.lost };
  if (!d) {
    // Not on a sandbox now (suspended, moving): the store keeps what the last flush wrote.
    const previous = ws.status?.conditions?.find((c) => c.type === WorkspaceConditionType.Durable);
    if (previous && previous.status === "True")
      return { status: "True", reason: previous.reason, message: previous.message };
    return { status: "False", reason: DurableReason.NotFlushed, message: "no flush has completed yet" };
  }
  if (d.reason === "FlushFailed")
    return {
      status: "False",
      reason: DurableReason.FlushFailed,
      message: d.message ?? "the last flush failed",
    };
  if (d.durable && d.lastFlushTime)
    return {
      status: "True",
      reason: DurableReason.Flushed,
      message: `flushed at ${d.lastFlushTime} (${d.bytes ?? 0} bytes)${d.dirty ? "; newer changes are flushed once writes go quiet" : ""}`,
    };
  return {
    status: "False",
    reason: DurableReason.NotFlushed,
    message:
      d.phase === "ready"
        ? "the first flush has not completed yet"
        : "the workspace's files are being restored",
  };
}

export function computeWorkspaceStatus(ws: Workspace, o: WorkspaceObservation, now: Date): WorkspaceStatus {
  let phase: NonNullable<WorkspaceStatus["phase"]>;
  let progress: Progress = "Reconciling";
  let reason: string;
  let message: string;
  const fleet = ws.spec.fleetRef.name;
  if (o.fleetMissing) {
    phase = "Pending";
    // A fleet applied together with the workspace may simply not exist yet.
    if (waitedTooLong(ws.metadata.creationTimestamp, now, o.stallAfterMs ?? STALL_AFTER_MS))
      progress = "Stalled";
    reason = WorkspaceReason.FleetNotFound;
    message = `SandboxFleet ${fleet} does not exist; create it or fix spec.fleetRef`;
  } else if (ws.spec.suspended) {
    phase = "Suspended";
    progress = "Current";
    reason = WorkspaceReason.Suspended;
    message = "suspended: the workspace holds no sandbox; set spec.suspended=false to place it again";
  } else if (isIdleSuspended(ws)) {
    phase = "Suspended";
    progress = "Current";
    reason = WorkspaceReason.IdleSuspended;
    message = `suspended at ${ws.metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED] || "an earlier time"} after spec.idleTimeout (${ws.spec.idleTimeout ?? "since unset"}) without data-plane activity; a data-plane request through the gateway wakes it, as does removing the annotation ${ANNOTATION_IDLE_SUSPENDED}`;
  } else if (!o.placement) {
    phase = "Pending";
    reason = WorkspaceReason.WaitingForCapacity;
    message = `waiting for a sandbox of fleet ${fleet}: ${o.waiting ?? "placing"}`;
  } else if (o.sandboxError) {
    phase = "Placed";
    reason = WorkspaceReason.SandboxError;
    message = `placed on ${o.placement.sandboxPod}, but the sandbox did not create it: ${o.sandboxError}`;
  } else if (o.leaving) {
    phase = "Draining";
    reason = WorkspaceReason.Draining;
    message = o.leaving;
  } else if (!o.confirmed) {
    phase = "Placed";
    reason = WorkspaceReason.SandboxError;
    message = `placed on ${o.placement.sandboxPod}; waiting for the sandbox to confirm`;
  } else if (o.durability?.phase === "restoring") {
    phase = "Placed";
    reason = WorkspaceReason.Restoring;
    message = `placed on ${o.placement.sandboxPod}; bringing its files in (object store, else ${ws.spec.source?.git ? "git" : "empty"})`;
  } else if (o.durability?.phase === "failed") {
    phase = "Placed";
    reason = GIT_REASONS.has(o.durability.reason ?? "")
      ? WorkspaceReason.CloneFailed
      : WorkspaceReason.RestoreFailed;
    message = `${o.durability.reason}: ${o.durability.message ?? "failed"}`;
  } else {
    phase = "Ready";
    progress = "Current";
    reason = WorkspaceReason.Placed;
    message = `ready on sandbox ${o.placement.sandboxPod}`;
  }
  const generation = ws.metadata.generation;
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const durable = durableCondition(ws, o);
  const d = o.durability;
  const lastFlushTime = (d?.durable ? d.lastFlushTime : undefined) ?? ws.status?.lastFlushTime;
  const bytes = (d?.durable ? d.bytes : undefined) ?? ws.status?.bytes;
  const sourceCommit = d?.sourceCommit ?? ws.status?.sourceCommit;
  return {
    ...gen,
    phase,
    ...(o.placement && !isSuspended(ws)
      ? { sandboxPod: o.placement.sandboxPod, endpoint: o.placement.endpoint, placedAt: o.placement.placedAt }
      : {}),
    ...(lastFlushTime ? { lastFlushTime: lastFlushTime.replace(/\.\d{3}Z$/, "Z") } : {}),
    ...(bytes !== undefined ? { bytes } : {}),
    ...(sourceCommit ? { sourceCommit } : {}),
    conditions: mergeConditions(
      ws.status?.conditions,
      [
        ...standardConditions({ progress, reason, message }, generation),
        ...(durable ? [{ type: WorkspaceConditionType.Durable, ...durable, ...gen }] : []),
      ],
      now,
    ),
  };
}
