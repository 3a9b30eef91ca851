// The objects an AgentRuntime should have, as a pure function of the AgentRuntime and
// what it depends on. Nothing time-dependent goes in, so the same input always gives the
// same objects (and the same hashes), and an unchanged AgentRuntime causes no writes.
import type { AgentRuntime, EnvVar } from "../../../api/v1alpha1/index.ts";
import { AgentEnv, AgentPath } from "../../../contracts/agent.ts";
import { METRICS_PORT_NAME, metricsPortBeside } from "../../../contracts/metrics.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { controllerRef, withSpecHash } from "../../../lib/kube/children.ts";
import { childName, shortHash } from "../../../lib/kube/names.ts";
import { TRUST_ENV_NAMES, tokenFile, tokenKeys, tokensVolume, trustForPods } from "../trust.desired.ts";
import { DNS_EGRESS, metricsIngress, peerOf, type PolicyPeer } from "../networkpolicy.ts";
import {
  RESTRICTED_UID,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  tmpMount,
  tmpVolume,
} from "../podsecurity.ts";

export const LABEL_AGENT = "agentry.dev/agent-runtime";
export const LABEL_TEMPLATE_HASH = "agentry.dev/template-hash";
export { ANNOTATION_SPEC_HASH } from "../../../lib/kube/children.ts";
export const ANNOTATION_AGENT_ID = "agentry.dev/agent-id";
export const ANNOTATION_CONTROLLER_ID = "agentry.dev/controller-id";
export const MANAGED_BY = { "app.kubernetes.io/managed-by": "agentry" } as const;

/** The non-root user agent containers run as (Pod Security "restricted"). */
export const AGENT_UID = RESTRICTED_UID;

export interface AgentContext {
  /** Value of agentry.dev/controller-id: which agentry installation manages the objects. */
  controllerId: string;
  /** Where the gateway runs, for the managed NetworkPolicy's ingress rule. */
  gateway: PolicyPeer;
  /** Where the operator runs: it reads the agent's /readyz for readinessReason. */
  operator?: PolicyPeer;
  /** The placed workspace the agent works in, when spec.workspaceRef is set. */
  workspace?: { name: string; endpoint: string; sandboxPod: string };
  /** The sandbox pods of the workspace's fleet (labels and port): the managed policy's egress. */
  fleet?: { podLabels: Record<string, string>; port: number };
}

export interface AgentChildren {
  pod?: KubeObject;
  service: KubeObject;
  networkPolicy?: KubeObject;
  claim?: KubeObject;
  podName: string;
  serviceName: string;
  networkPolicyName: string;
  claimName: string;
  templateHash: string;
  endpoint: string;
}

export function agentLabels(name: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "agentry-agent",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "agent",
    "app.kubernetes.io/part-of": "agentry",
    ...MANAGED_BY,
    [LABEL_AGENT]: name,
  };
}

export function ownerReference(ar: AgentRuntime) {
  return controllerRef(ar);
}

function agentEnv(ar: AgentRuntime, ctx: AgentContext): EnvVar[] {
  const spec = ar.spec;
  const env: (EnvVar & { valueFrom?: unknown })[] = [
    { name: AgentEnv.NAME, value: ar.metadata.name! },
    { name: AgentEnv.NAMESPACE, value: ar.metadata.namespace! },
    { name: AgentEnv.PORT, value: String(spec.port) },
    { name: AgentEnv.METRICS_ADDR, value: `0.0.0.0:${metricsPortBeside(spec.port)}` },
  ];
  if (spec.model) {
    env.push({ name: AgentEnv.MODEL_PROVIDER, value: spec.model.provider });
    env.push({ name: AgentEnv.MODEL, value: spec.model.model });
    if (spec.model.endpoint) env.push({ name: AgentEnv.MODEL_ENDPOINT, value: spec.model.endpoint });
    if (spec.model.credentialsSecretRef) {
      env.push({
        name: AgentEnv.MODEL_API_KEY,
        valueFrom: {
          secretKeyRef: {
            name: spec.model.credentialsSecretRef.name,
            key: spec.model.credentialsSecretRef.key,
          },
        },
      });
    }
  }
  if (ctx.workspace) {
    env.push({ name: AgentEnv.WORKSPACE, value: ctx.workspace.name });
    env.push({ name: AgentEnv.WORKSPACE_URL, value: ctx.workspace.endpoint });
    env.push({ name: AgentEnv.WORKSPACE_TOKEN_FILE, value: tokenFile(WORKSPACE_TOKEN_PATH) });
  }
  env.push(...(trustForPods.env as EnvVar[]));
  const own = new Set([...env.map((e) => e.name), ...TRUST_ENV_NAMES]);
  return [...env, ...(spec.env ?? []).filter((e) => !own.has(e.name))];
}

/** The file, under the tokens mount, of the token for the agent's workspace. */
const WORKSPACE_TOKEN_PATH = "workspace";

/**
 * The managed NetworkPolicy of an agent Pod: ingress on its port only from its own namespace,
 * the gateway and the operator; egress only to DNS, the sandboxes of its workspace's fleet and
 * the destinations spec.networkPolicy.egress lists.
 */
export function agentPolicySpec(ar: AgentRuntime, ctx: AgentContext): Record<string, unknown> {
  const spec = ar.spec;
  return {
    podSelector: { matchLabels: { [LABEL_AGENT]: ar.metadata.name!, ...MANAGED_BY } },
    policyTypes: ["Ingress", "Egress"],
    ingress: [
      {
        from: [{ podSelector: {} }, peerOf(ctx.gateway), ...(ctx.operator ? [peerOf(ctx.operator)] : [])],
        ports: [{ port: spec.port, protocol: "TCP" }],
      },
      metricsIngress(spec.port),
    ],
    egress: [
      DNS_EGRESS,
      ...(ctx.fleet
        ? [
            {
              to: [{ podSelector: { matchLabels: ctx.fleet.podLabels } }],
              ports: [{ port: ctx.fleet.port, protocol: "TCP" }],
            },
          ]
        : []),
      ...(spec.networkPolicy.egress ?? []).map((rule) => ({
        to: [{ ipBlock: { cidr: rule.cidr } }],
        ...(rule.ports?.length ? { ports: rule.ports.map((p) => ({ port: p, protocol: "TCP" })) } : {}),
      })),
    ],
  };
}

export function desiredAgent(ar: AgentRuntime, ctx: AgentContext): AgentChildren {
  const name = ar.metadata.name!;
  const namespace = ar.metadata.namespace!;
  const spec = ar.spec;
  const labels = agentLabels(name);
  const annotations = {
    [ANNOTATION_AGENT_ID]: ar.metadata.uid!,
    [ANNOTATION_CONTROLLER_ID]: ctx.controllerId,
  };
  const owner = [ownerReference(ar)];
  const serviceName = childName(name);
  const networkPolicyName = childName(name);
  const claimName = childName(name, "data");
  const port = spec.port;
  const endpoint = `http://${serviceName}.${namespace}.svc:${port}`;

  const volumes: Record<string, unknown>[] = [tmpVolume, trustForPods.volume];
  const mounts: Record<string, unknown>[] = [tmpMount, trustForPods.mount];
  if (ctx.workspace) {
    // Only the workspace's token of the namespace's tokens Secret.
    const tokens = tokensVolume([
      { key: tokenKeys.workspace(ctx.workspace.name), path: WORKSPACE_TOKEN_PATH },
    ]);
    volumes.push(tokens.volume);
    mounts.push(tokens.mount);
  }
  const initContainers: Record<string, unknown>[] = [];
  const containerSecurity = restrictedContainerSecurity;
  if (spec.storage) {
    volumes.push({ name: "data", persistentVolumeClaim: { claimName } });
    mounts.push({ name: "data", mountPath: spec.storage.mountPath });
    if (spec.storage.bootstrapConfigMap) {
      volumes.push({ name: "bootstrap", configMap: { name: spec.storage.bootstrapConfigMap } });
      initContainers.push({
        name: "bootstrap",
        image: spec.image,
        ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
        // Copy the default files without overwriting anything the agent already changed.
        command: ["sh", "-c", 'cp -Rn /agentry/bootstrap/. "$AGENTRY_DATA_DIR"/'],
        env: [{ name: "AGENTRY_DATA_DIR", value: spec.storage.mountPath }],
        volumeMounts: [
          { name: "data", mountPath: spec.storage.mountPath },
          { name: "bootstrap", mountPath: "/agentry/bootstrap", readOnly: true },
        ],
        securityContext: containerSecurity,
      });
    }
  }

  const container: Record<string, unknown> = {
    name: "agent",
    image: spec.image,
    ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
    ...(spec.command ? { command: spec.command } : {}),
    ...(spec.args ? { args: spec.args } : {}),
    ports: [
      { name: "http", containerPort: port, protocol: "TCP" },
      { name: METRICS_PORT_NAME, containerPort: metricsPortBeside(port), protocol: "TCP" },
    ],
    env: agentEnv(ar, ctx),
    ...(spec.envFrom ? { envFrom: spec.envFrom } : {}),
    ...(spec.resources ? { resources: spec.resources } : {}),
    readinessProbe: {
      httpGet: { path: AgentPath.readyz, port: "http" },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: AgentPath.healthz, port: "http" },
      periodSeconds: 10,
      failureThreshold: 6,
    },
    volumeMounts: mounts,
    securityContext: containerSecurity,
  };

  const podSpec: Record<string, unknown> = {
    ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
    automountServiceAccountToken: Boolean(spec.serviceAccountName),
    enableServiceLinks: false,
    restartPolicy: "Always",
    ...(spec.runtimeClassName ? { runtimeClassName: spec.runtimeClassName } : {}),
    securityContext: restrictedPodSecurity,
    ...(initContainers.length ? { initContainers } : {}),
    containers: [container],
    volumes,
  };
  const templateHash = shortHash({ labels, annotations, podSpec });
  // A new template is a new Pod of a new name, so it can start beside the old one (plan.ts).
  const podName = childName(name, templateHash);

  const pod: KubeObject | undefined = spec.suspended
    ? undefined
    : {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: podName,
          namespace,
          labels: { ...labels, [LABEL_TEMPLATE_HASH]: templateHash },
          annotations,
          ownerReferences: owner,
        },
        spec: podSpec,
      };

  const service = withSpecHash({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: serviceName, namespace, labels, annotations, ownerReferences: owner },
    spec: {
      type: "ClusterIP",
      selector: { [LABEL_AGENT]: name, ...MANAGED_BY },
      ports: [{ name: "http", port, targetPort: "http", protocol: "TCP" }],
    },
  });

  const networkPolicy = spec.networkPolicy.enabled
    ? withSpecHash({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: networkPolicyName, namespace, labels, annotations, ownerReferences: owner },
        spec: agentPolicySpec(ar, ctx),
      })
    : undefined;

  const claim = spec.storage
    ? withSpecHash({
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name: claimName, namespace, labels, annotations, ownerReferences: owner },
        spec: {
          accessModes: ["ReadWriteOnce"],
          resources: { requests: { storage: String(spec.storage.size) } },
          ...(spec.storage.storageClassName ? { storageClassName: spec.storage.storageClassName } : {}),
        },
      })
    : undefined;

  return {
    ...(pod ? { pod } : {}),
    service,
    ...(networkPolicy ? { networkPolicy } : {}),
    ...(claim ? { claim } : {}),
    podName,
    serviceName,
    networkPolicyName,
    claimName,
    templateHash,
    endpoint,
  };
}
