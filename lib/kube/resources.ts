// Where each kind agentry reads or writes lives in the REST API. A fixed table instead of
// discovery: agentry only touches these kinds, and a missing entry is a programming error.
export interface ResourceInfo {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const table: Record<string, ResourceInfo> = {
  "v1/Pod": { group: "", version: "v1", plural: "pods", namespaced: true },
  "v1/Service": { group: "", version: "v1", plural: "services", namespaced: true },
  "v1/ConfigMap": { group: "", version: "v1", plural: "configmaps", namespaced: true },
  "v1/Secret": { group: "", version: "v1", plural: "secrets", namespaced: true },
  "v1/PersistentVolumeClaim": {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    namespaced: true,
  },
  "v1/Event": { group: "", version: "v1", plural: "events", namespaced: true },
  "v1/Namespace": { group: "", version: "v1", plural: "namespaces", namespaced: false },
  "networking.k8s.io/v1/NetworkPolicy": {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    namespaced: true,
  },
  "batch/v1/Job": { group: "batch", version: "v1", plural: "jobs", namespaced: true },
  "batch/v1/CronJob": { group: "batch", version: "v1", plural: "cronjobs", namespaced: true },
  "apps/v1/Deployment": { group: "apps", version: "v1", plural: "deployments", namespaced: true },
  "apps/v1/ReplicaSet": { group: "apps", version: "v1", plural: "replicasets", namespaced: true },
  "coordination.k8s.io/v1/Lease": {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    namespaced: true,
  },
  "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration": {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: "validatingwebhookconfigurations",
    namespaced: false,
  },
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: "mutatingwebhookconfigurations",
    namespaced: false,
  },
  "rbac.authorization.k8s.io/v1/Role": {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    plural: "roles",
    namespaced: true,
  },
  "rbac.authorization.k8s.io/v1/RoleBinding": {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    plural: "rolebindings",
    namespaced: true,
  },
  "rbac.authorization.k8s.io/v1/ClusterRole": {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    plural: "clusterroles",
    namespaced: false,
  },
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    plural: "clusterrolebindings",
    namespaced: false,
  },
  "agentry.dev/v1alpha1/AgentRuntime": {
    group: "agentry.dev",
    version: "v1alpha1",
    plural: "agentruntimes",
    namespaced: true,
  },
  "agentry.dev/v1alpha1/Pipeline": {
    group: "agentry.dev",
    version: "v1alpha1",
    plural: "pipelines",
    namespaced: true,
  },
  "agentry.dev/v1alpha1/SandboxFleet": {
    group: "agentry.dev",
    version: "v1alpha1",
    plural: "sandboxfleets",
    namespaced: true,
  },
  "agentry.dev/v1alpha1/Workspace": {
    group: "agentry.dev",
    version: "v1alpha1",
    plural: "workspaces",
    namespaced: true,
  },
};

export function resourceFor(apiVersion: string, kind: string): ResourceInfo {
  const info = table[`${apiVersion}/${kind}`];
  if (!info) throw new Error(`agentry does not know the REST path of ${apiVersion} ${kind}`);
  return info;
}

/** REST path of a collection (namespace undefined = all namespaces) or of one object. */
export function resourcePath(
  info: ResourceInfo,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const obj = name ? `/${encodeURIComponent(name)}` : "";
  const sub = name && subresource ? `/${subresource}` : "";
  return `${base}${ns}/${info.plural}${obj}${sub}`;
}
