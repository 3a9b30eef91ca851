// Pure builders for SandboxFleet's children: the names and labels of a fleet's objects and
// its sandbox Deployment. Nothing time-dependent goes into the Deployment.
import type { SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import { API_VERSION } from "../../../api/v1alpha1/index.ts";
import { SandboxEnv, SandboxPath, workspaceIdOf } from "../../../contracts/sandbox.ts";
import { METRICS_PORT_NAME, metricsPortBeside } from "../../../contracts/metrics.ts";
import {
  STORE_BROKER_AUDIENCE,
  STORE_TOKEN_DIR,
  STORE_TOKEN_PATH,
  StoreEnv,
} from "../../../contracts/store.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { childName, shortHash } from "../../../lib/kube/names.ts";
import {
  AGENT_UID,
  ANNOTATION_CONTROLLER_ID,
  ANNOTATION_SPEC_HASH,
  MANAGED_BY,
} from "../agentruntime/desired.ts";
import { TRUST_ENV_NAMES, trustForPods } from "../trust.desired.ts";
import { sandboxResources } from "./resources.ts";

const STORE_ENV_NAMES = new Set<string>(Object.values(StoreEnv));

export const LABEL_FLEET = "agentry.dev/sandbox-fleet";
export const ANNOTATION_DRAINING = "agentry.dev/draining";
/**
 * When the drain of a sandbox marked draining began (RFC 3339), written with the mark: a
 * restarted or newly elected operator goes on with the drain instead of starting its
 * drainTimeout again.
 */
export const ANNOTATION_DRAINING_SINCE = "agentry.dev/draining-since";
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
