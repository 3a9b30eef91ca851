// The status of an AgentRuntime as a pure function of what is observed: a chain of
// checks, each `(input) → verdict | undefined`, turns Kubernetes' view of the Pod into one
// phase and one readiness line a person can act on.
import type {
  AgentRuntime,
  AgentRuntimePhase,
  AgentRuntimeStatus,
  ObjectMeta,
} from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";
import type { CachedPod } from "../../../lib/kube/projections.ts";
import {
  mergeConditions,
  type Progress,
  STALL_AFTER_MS,
  standardConditions,
  waitedTooLong,
} from "../../../lib/kube/conditions.ts";

/** A Pod as the cache keeps it (lib/kube/projections.ts podView). */
export interface PodView {
  metadata: Partial<
    Pick<ObjectMeta, "name" | "namespace" | "uid" | "deletionTimestamp" | "labels" | "ownerReferences">
  >;
  spec?: CachedPod["spec"];
  status?: CachedPod["status"];
}

export interface AgentObservation {
  pod?: PodView;
  podName: string;
  serviceName: string;
  serviceExists: boolean;
  endpoint: string;
  templateHash: string;
  /** Why the agent cannot start yet because of its workspace, if so. */
  workspaceProblem?: string;
  /** The workspace spec.workspaceRef names does not exist (as opposed to: not placed yet). */
  workspaceMissing?: boolean;
  /** The workspace is itself stalled (Stalled=True): the agent cannot start until it is fixed. */
  workspaceStalled?: boolean;
  /** How long a wait on someone else (a missing workspace, no node for the Pod) may last before it stalls. */
  stallAfterMs?: number;
  /** The pod is being replaced because the spec changed. */
  replacing?: boolean;
  /** The Pod of an earlier spec that serves while `pod` (the new one) starts: its name. */
  serving?: string;
  /** An error from the last attempt to write children. */
  reconcileError?: string;
  /** A child's name is held by an object the AgentRuntime does not control (agentry leaves it alone). */
  nameConflict?: string;
  /** The agent's own GET /readyz answer, read while its Pod runs but is not ready. */
  agentReadiness?: { status: string; reason?: string };
}

interface Verdict {
  phase: AgentRuntimePhase;
  /** kstatus: Current (Ready), Reconciling (getting there) or Stalled (needs a change). */
  progress: Progress;
  reason: string;
  message: string;
}

type Check = (ar: AgentRuntime, o: AgentObservation, now: Date) => Verdict | undefined;

const IMAGE_ERRORS = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]);
const CONFIG_ERRORS = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

const container = (o: AgentObservation) => o.pod?.status?.containerStatuses?.find((c) => c.name === "agent");

const checks: Check[] = [
  (_, o) =>
    o.nameConflict
      ? {
          phase: "Error",
          progress: "Stalled",
          reason: AgentRuntimeReason.NameConflict,
          message: o.nameConflict,
        }
      : undefined,
  (ar) =>
    ar.spec.suspended
      ? {
          phase: "Suspended",
          progress: "Current",
          reason: AgentRuntimeReason.Suspended,
          message: "suspended: the Pod is removed and the Service kept; set spec.suspended=false to start it",
        }
      : undefined,
  (_, o) =>
    o.reconcileError
      ? {
          phase: "Error",
          progress: "Reconciling",
          reason: AgentRuntimeReason.ReconcileError,
          message: o.reconcileError,
        }
      : undefined,
  (ar, o, now) =>
    o.workspaceProblem
      ? {
          phase: "Pending",
          // A Workspace applied together with the agent may simply not exist yet.
          progress:
            o.workspaceStalled ||
            (o.workspaceMissing &&
              waitedTooLong(ar.metadata.creationTimestamp, now, o.stallAfterMs ?? STALL_AFTER_MS))
              ? "Stalled"
              : "Reconciling",
          reason: AgentRuntimeReason.WorkspaceNotReady,
          message: o.workspaceProblem,
        }
      : undefined,
  (_, o) =>
    o.replacing || o.pod?.metadata.deletionTimestamp
      ? {
          phase: "Starting",
          progress: "Reconciling",
          reason: AgentRuntimeReason.PodPending,
          message: o.replacing
            ? `replacing the agent's Pod after a spec change (the new one: ${o.podName})`
            : `Pod ${o.podName} is being deleted; a new one follows`,
        }
      : undefined,
  (_, o) =>
    !o.pod
      ? {
          phase: "Pending",
          progress: "Reconciling",
          reason: AgentRuntimeReason.PodPending,
          message: `creating Pod ${o.podName}`,
        }
      : undefined,
  (_, o, now) => {
    const c = o.pod?.status?.conditions?.find((x) => x.type === "PodScheduled") as
      { status: string; reason?: string; message?: string; lastTransitionTime?: string } | undefined;
    if (c?.status === "False" && c.reason === "Unschedulable") {
      return {
        phase: "Pending",
        // Nodes come and go (a cluster autoscaler adds one): stalled only past the bound.
        progress: waitedTooLong(c.lastTransitionTime, now, o.stallAfterMs ?? STALL_AFTER_MS)
          ? "Stalled"
          : "Reconciling",
        reason: AgentRuntimeReason.Unschedulable,
        message: `no node can run the agent: ${c.message ?? "unschedulable"}; check resources, node selectors and taints`,
      };
    }
    return undefined;
  },
  (ar, o) => {
    const waiting = container(o)?.state?.waiting;
    if (waiting?.reason && IMAGE_ERRORS.has(waiting.reason)) {
      return {
        phase: "Error",
        progress: "Stalled",
        reason: AgentRuntimeReason.ImagePullError,
        message: `cannot pull image ${ar.spec.image} (${waiting.reason}): ${waiting.message ?? "check the image name and pull secrets"}`,
      };
    }
    if (waiting?.reason && CONFIG_ERRORS.has(waiting.reason)) {
      return {
        phase: "Error",
        progress: "Stalled",
        reason: AgentRuntimeReason.AgentError,
        message: `the container cannot start (${waiting.reason}): ${waiting.message ?? "check env and secret references"}`,
      };
    }
    return undefined;
  },
  (_, o) => {
    const c = container(o);
    if (c?.state?.waiting?.reason === "CrashLoopBackOff") {
      const last = c.lastState?.terminated;
      const detail = last
        ? ` (last exit code ${last.exitCode ?? "?"}${last.message ? `: ${last.message}` : ""})`
        : "";
      return {
        phase: "Error",
        progress: "Stalled",
        reason: AgentRuntimeReason.CrashLoop,
        message: `the agent keeps crashing${detail}; see kubectl logs pod/${o.podName} --previous`,
      };
    }
    return undefined;
  },
  (_, o) => {
    const phase = o.pod?.status?.phase;
    if (phase === "Failed" || phase === "Succeeded") {
      const why =
        o.pod?.status?.message ??
        o.pod?.status?.reason ??
        `the Pod ${phase === "Failed" ? "failed" : "exited"}`;
      return {
        phase: "Error",
        progress: "Reconciling",
        reason: AgentRuntimeReason.AgentError,
        message: `${why}; recreating the Pod`,
      };
    }
    return undefined;
  },
  (_, o) => {
    const ready = o.pod?.status?.conditions?.find((x) => x.type === "Ready");
    if (ready?.status === "True") {
      return {
        phase: "Ready",
        progress: "Current",
        reason: AgentRuntimeReason.AgentReady,
        message: `the agent answers at ${o.endpoint}`,
      };
    }
    return undefined;
  },
  (_, o) => {
    const r = o.agentReadiness;
    if (o.pod?.status?.phase !== "Running" || !r || r.status === "ready") return undefined;
    const why = r.reason ?? "no reason given";
    return r.status === "error"
      ? {
          phase: "Error",
          progress: "Stalled",
          reason: AgentRuntimeReason.AgentError,
          message: `the agent reports an error: ${why} (GET /readyz); fix its settings, it picks them up on restart`,
        }
      : {
          phase: "Starting",
          progress: "Reconciling",
          reason: AgentRuntimeReason.NotReady,
          message: `the agent is ${r.status}: ${why} (GET /readyz)`,
        };
  },
  (_, o) => {
    const phase = o.pod?.status?.phase;
    if (phase === "Running") {
      const ready = o.pod?.status?.conditions?.find((x) => x.type === "Ready");
      return {
        phase: "Starting",
        progress: "Reconciling",
        reason: AgentRuntimeReason.NotReady,
        message: `the agent is running but not ready yet${ready?.message ? `: ${ready.message}` : ""} (GET /readyz)`,
      };
    }
    return undefined;
  },
];

export function computeAgentStatus(ar: AgentRuntime, o: AgentObservation, now: Date): AgentRuntimeStatus {
  let verdict: Verdict = {
    phase: "Pending",
    progress: "Reconciling",
    reason: AgentRuntimeReason.PodPending,
    message: o.pod?.spec?.nodeName
      ? `starting on node ${o.pod.spec.nodeName}`
      : `waiting for Pod ${o.podName} to be scheduled`,
  };
  for (const check of checks) {
    const v = check(ar, o, now);
    if (v) {
      verdict = v;
      break;
    }
  }
  const generation = ar.metadata.generation;
  const served = o.serving !== undefined && NEW_POD_REASONS.has(verdict.reason) ? o.serving : undefined;
  const conditions = mergeConditions(
    ar.status?.conditions,
    served !== undefined
      ? servedConditions(verdict, served, o.podName, generation)
      : standardConditions(verdict, generation),
    now,
  );
  const restartCount = container(o)?.restartCount;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    phase: served !== undefined ? "Ready" : verdict.phase,
    readinessReason: served !== undefined ? conditions[0]!.message : verdict.message,
    ...(served !== undefined
      ? { podName: served }
      : o.pod && !ar.spec.suspended
        ? { podName: o.podName }
        : {}),
    ...(o.serviceExists ? { serviceName: o.serviceName, endpoint: o.endpoint } : {}),
    // The serving Pod's count is not at hand, and the new one's would be news every time it moves.
    ...(restartCount !== undefined && served === undefined ? { restartCount } : {}),
    templateHash: o.templateHash,
    conditions,
  };
}

/** The verdicts about the new Pod alone: while one holds, an earlier Pod may still serve. */
const NEW_POD_REASONS = new Set<string>([
  AgentRuntimeReason.PodPending,
  AgentRuntimeReason.Unschedulable,
  AgentRuntimeReason.ImagePullError,
  AgentRuntimeReason.CrashLoop,
  AgentRuntimeReason.NotReady,
  AgentRuntimeReason.AgentError,
]);

/**
 * The conditions while the Pod of the earlier spec (`served`) serves and the new one
 * (`podName`) is not Ready: Ready=True (the agent answers), and Reconciling=True, or
 * Stalled=True with the new Pod's trouble, so kstatus says the change is not rolled out. The
 * message of a new Pod on its way is one and the same until it is Ready, so its progress
 * costs no status writes.
 */
function servedConditions(
  v: Verdict,
  served: string,
  podName: string,
  generation: number | undefined,
): ReturnType<typeof standardConditions> {
  const onItsWay = v.progress === "Reconciling" && (v.phase === "Pending" || v.phase === "Starting");
  const message = onItsWay
    ? `Pod ${served} serves while its replacement ${podName} starts (the spec changed)`
    : `Pod ${served} serves; its replacement ${podName}: ${v.message}`;
  const replacing = { reason: AgentRuntimeReason.Replacing, message };
  const [ready] = standardConditions({ ...replacing, progress: "Current" }, generation);
  const [, progress] = standardConditions(onItsWay ? { ...v, ...replacing } : v, generation);
  return [ready!, progress!];
}
