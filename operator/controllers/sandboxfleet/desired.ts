// Pure builders for SandboxFleet: the sandbox Deployment, the fleet's status and the status
// of its workspaces. Nothing time-dependent goes into the Deployment.
import type {
  SandboxFleet,
  SandboxFleetStatus,
  Workspace,
  WorkspaceStatus,
} from "../../../api/v1alpha1/index.ts";
import {
  ANNOTATION_IDLE_SUSPENDED,
  API_VERSION,
  DurableReason,
  isIdleSuspended,
  SandboxFleetReason,
  WorkspaceConditionType,
  WorkspaceReason,
} from "../../../api/v1alpha1/index.ts";
import type { Durability } from "../../../contracts/sandbox.ts";
import { SandboxEnv, SandboxPath, workspaceIdOf } from "../../../contracts/sandbox.ts";
import { METRICS_PORT_NAME, metricsPortBeside } from "../../../contracts/metrics.ts";
import { STORE_BROKER_AUDIENCE, STORE_TOKEN_DIR, STORE_TOKEN_PATH, StoreEnv } from "../../../contracts/store.ts";

const STORE_ENV_NAMES = new Set<string>(Object.values(StoreEnv));
import type { KubeObject } from "../../../lib/kube/client.ts";
import {
  mergeConditions,
  type Progress,
  STALL_AFTER_MS,
  standardConditions,
  waitedTooLong,
} from "../../../lib/kube/conditions.ts";
import { childName, shortHash } from "../../../lib/kube/names.ts";
import {
  AGENT_UID,
  ANNOTATION_CONTROLLER_ID,
  ANNOTATION_SPEC_HASH,
  MANAGED_BY,
} from "../agentruntime/desired.ts";
import { TRUST_ENV_NAMES, trustForPods } from "../trust.desired.ts";
import { isSuspended } from "../workspace.lifetime.ts";

export const LABEL_FLEET = "agentry.dev/sandbox-fleet";
export const ANNOTATION_DRAINING = "agentry.dev/draining";
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";
export const WORKSPACE_FINALIZER = "agentry.dev/workspace-cleanup";

export function fleetSelector(name: string): Record<string, string> {
  return { [LABEL_FLEET]: name, ...MANAGED_BY };
}

/** Labels of a fleet's Deployment, sandbox pods and NetworkPolicy. */
export function fleetLabels(name: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "agentry-sandbox",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "sandbox",
    "app.kubernetes.io/part-of": "agentry",
    ...fleetSelector(name),
  };
}

export function deploymentName(fleet: SandboxFleet): string {
  return childName(fleet.metadata.name!, "sandbox");
}

/** The id of a workspace on its sandbox: unique across namespaces. */
export function workspaceId(ws: Pick<Workspace, "metadata">): string {
  return workspaceIdOf(ws.metadata.namespace!, ws.metadata.name!);
}

/** How a fleet's sandboxes reach its object store: the operator's broker (none: not durable). */
export interface SandboxStoreAccess {
  brokerUrl: string;
}

/** Lifetime the kubelet gives the projected token a sandbox sends to the store broker. */
const STORE_TOKEN_SECONDS = 3600;

export function desiredDeployment(
  fleet: SandboxFleet,
  replicas: number,
  controllerId: string,
  store?: SandboxStoreAccess,
): KubeObject {
  const name = fleet.metadata.name!;
  const t = fleet.spec.template;
  const labels = fleetLabels(name);
  const metricsPort = metricsPortBeside(t.port);
  const security = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
  // The trust settings come last and cannot be overridden by the template's env.
  const env = [
    { name: SandboxEnv.LISTEN, value: `0.0.0.0:${t.port}` },
    { name: SandboxEnv.ROOT, value: "/workspaces" },
    { name: SandboxEnv.MAX_WORKSPACES, value: String(fleet.spec.maxWorkspacesPerSandbox) },
    { name: SandboxEnv.METRICS_ADDR, value: `0.0.0.0:${metricsPort}` },
    ...(t.env ?? []).filter((e) => !TRUST_ENV_NAMES.has(e.name) && !STORE_ENV_NAMES.has(e.name)),
    ...trustForPods.env,
    ...(store
      ? [
          { name: StoreEnv.BROKER_URL, value: store.brokerUrl },
          { name: StoreEnv.TOKEN_FILE, value: STORE_TOKEN_PATH },
        ]
      : []),
  ];
  const template = {
    metadata: {
      labels: { ...(t.labels ?? {}), ...labels },
      annotations: { [ANNOTATION_CONTROLLER_ID]: controllerId },
    },
    spec: {
      ...(t.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(t.runtimeClassName ? { runtimeClassName: t.runtimeClassName } : {}),
      ...(t.nodeSelector ? { nodeSelector: t.nodeSelector } : {}),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: AGENT_UID,
        runAsGroup: AGENT_UID,
        fsGroup: AGENT_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: "sandbox",
          image: t.image,
          ...(t.imagePullPolicy ? { imagePullPolicy: t.imagePullPolicy } : {}),
          ...(t.command ? { command: t.command } : {}),
          ...(t.args ? { args: t.args } : {}),
          ports: [
            { name: "http", containerPort: t.port, protocol: "TCP" },
            { name: METRICS_PORT_NAME, containerPort: metricsPort, protocol: "TCP" },
          ],
          env,
          resources: sandboxResources(t),
          readinessProbe: { httpGet: { path: SandboxPath.readyz, port: "http" }, periodSeconds: 5 },
          livenessProbe: {
            httpGet: { path: SandboxPath.healthz, port: "http" },
            periodSeconds: 10,
            failureThreshold: 6,
          },
          volumeMounts: [
            { name: "workspaces", mountPath: "/workspaces" },
            { name: "tmp", mountPath: "/tmp" },
            trustForPods.mount,
            ...(store ? [{ name: "store-token", mountPath: STORE_TOKEN_DIR, readOnly: true }] : []),
          ],
          securityContext: security,
        },
      ],
      volumes: [
        { name: "workspaces", emptyDir: { sizeLimit: String(t.storage.workspaceSizeLimit) } },
        { name: "tmp", emptyDir: { sizeLimit: String(t.storage.tmpSizeLimit) } },
        trustForPods.volume,
        // The pod's own ServiceAccount token for the store broker: bound to this pod, for the
        // broker's audience only, rotated by the kubelet. No store credentials enter the pod.
        ...(store
          ? [
              {
                name: "store-token",
                projected: {
                  sources: [
                    {
                      serviceAccountToken: {
                        audience: STORE_BROKER_AUDIENCE,
                        expirationSeconds: STORE_TOKEN_SECONDS,
                        path: "token",
                      },
                    },
                  ],
                },
              },
            ]
          : []),
      ],
    },
  };
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: deploymentName(fleet),
      namespace: fleet.metadata.namespace,
      labels,
      annotations: { [ANNOTATION_CONTROLLER_ID]: controllerId },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: "SandboxFleet",
          name,
          uid: fleet.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      selector: { matchLabels: fleetSelector(name) },
      // Never take a sandbox down before its replacement is up: workspaces live on it.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
      template,
    },
  };
  deployment.metadata.annotations![ANNOTATION_SPEC_HASH] = shortHash({
    ...deployment,
    spec: { ...(deployment.spec as object), replicas: 0 },
  });
  return deployment;
}

/** Room for the container's logs in its ephemeral-storage limit, beyond the two volumes. */
const LOG_ROOM = 256n * 1024n * 1024n;
const EPHEMERAL = "ephemeral-storage";

/**
 * The sandbox container's resources: the template's, with ephemeral-storage added from
 * template.storage where the template does not set it (limit: both volumes plus room for
 * logs; request: storage.ephemeralStorageRequest, at most the limit).
 */
export function sandboxResources(t: SandboxFleet["spec"]["template"]): {
  requests: Record<string, string | number>;
  limits: Record<string, string | number>;
} {
  const requests = { ...(t.resources?.requests ?? {}) };
  const limits = { ...(t.resources?.limits ?? {}) };
  const s = t.storage;
  limits[EPHEMERAL] ??= formatBytes(
    quantityBytes(s.workspaceSizeLimit) + quantityBytes(s.tmpSizeLimit) + LOG_ROOM,
  );
  if (requests[EPHEMERAL] === undefined) {
    const request = quantityBytes(s.ephemeralStorageRequest);
    const limit = quantityBytes(limits[EPHEMERAL]);
    requests[EPHEMERAL] = request <= limit ? String(s.ephemeralStorageRequest) : String(limits[EPHEMERAL]);
  }
  return { requests, limits };
}

const SUFFIX: Record<string, bigint> = {
  "": 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
};

/** Bytes of a Kubernetes quantity (rounded up); throws on what is not one. */
export function quantityBytes(q: string | number): bigint {
  const m = /^\+?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+)|(m|k|[MGTPE]i?|Ki))?$/.exec(String(q).trim());
  if (!m || (m[1] === "" && !m[2])) throw new Error(`"${q}" is not a quantity`);
  const digits = BigInt(`${m[1] || "0"}${m[2] ?? ""}`);
  let scale = 10n ** BigInt((m[2] ?? "").length);
  let multiplier = 1n;
  if (m[3] !== undefined) {
    const exp = Number(m[3]);
    if (exp >= 0) multiplier = 10n ** BigInt(exp);
    else scale *= 10n ** BigInt(-exp);
  } else if (m[4] === "m") scale *= 1000n;
  else multiplier = SUFFIX[m[4] ?? ""]!;
  const product = digits * multiplier;
  return (product + scale - 1n) / scale;
}

/** A byte count as a quantity: the largest binary suffix that divides it exactly. */
export function formatBytes(bytes: bigint): string {
  for (const suffix of ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"])
    if (bytes > 0n && bytes % SUFFIX[suffix]! === 0n) return `${bytes / SUFFIX[suffix]!}${suffix}`;
  return String(bytes);
}

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
