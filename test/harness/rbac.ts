// RBAC for tests: a Role and the RoleBinding that grants it to one user or group, as one
// manifest for `kubectl apply -f -` (rules default to the agentry.dev API group).
export interface Rule {
  apiGroups?: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export type Subject = { user: string } | { group: string };

export function grant(namespace: string, name: string, subject: Subject, rules: Rule[]): string {
  const role = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name, namespace },
    rules: rules.map((r) => ({ apiGroups: ["agentry.dev"], ...r })),
  };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace },
    subjects: [
      {
        kind: "user" in subject ? "User" : "Group",
        name: "user" in subject ? subject.user : subject.group,
        apiGroup: "rbac.authorization.k8s.io",
      },
    ],
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
  };
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: [role, binding] });
}
