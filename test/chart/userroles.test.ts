// The chart's user roles, agentry-view ⊂ agentry-edit ⊂ agentry-admin, applied to the real
// control plane: the clusterrole-aggregation controller folds them into the built-in view,
// edit and admin roles, and SubjectAccessReviews for people bound to those built-in roles
// answer the data plane's subresources as the README says.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { chart, helm, release, type Doc } from "./helm.ts";

const auth = () => api(k8s.AuthorizationV1Api);

async function may(user: string, namespace: string, verb: string, resource: string, subresource?: string) {
  const r = await auth().createSubjectAccessReview({
    body: {
      spec: {
        user,
        groups: ["system:authenticated"],
        resourceAttributes: {
          group: "agentry.dev",
          namespace,
          verb,
          resource,
          ...(subresource ? { subresource } : {}),
        },
      },
    },
  });
  return r.status?.allowed === true;
}

describe("the chart's user roles", () => {
  it("aggregate into the built-in view, edit and admin roles with the data plane's subresources", async (t) => {
    const name = release();
    const res = await helm([
      "template",
      name,
      chart,
      "--namespace",
      "agentry-system",
      "--show-only",
      "templates/userrole-view.yaml",
      "--show-only",
      "templates/userrole-edit.yaml",
      "--show-only",
      "templates/userrole-admin.yaml",
    ]);
    assert.equal(res.code, 0, res.stderr);
    const docs = (yaml.loadAll(res.stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null);
    assert.deepEqual(docs.map((d) => d.metadata.name).sort(), [
      `${name}-agentry-admin`,
      `${name}-agentry-edit`,
      `${name}-agentry-view`,
    ]);
    const applied = await kubectl(["apply", "-f", "-"], res.stdout);
    assert.equal(applied.code, 0, applied.stderr);
    t.after(async () => {
      await kubectl(["delete", "clusterrole", ...docs.map((d) => d.metadata.name), "--ignore-not-found"]);
    });
    const rbac = () => api(k8s.RbacAuthorizationV1Api);
    for (const builtIn of ["view", "edit", "admin"])
      await waitFor(`the ${builtIn} role to aggregate agentry's rules`, async () => {
        const role = await rbac().readClusterRole({ name: builtIn });
        return role.rules?.some((r) => r.apiGroups?.includes("agentry.dev")) ?? false;
      });

    const ns = await testNamespace(t);
    for (const [user, role] of [
      ["viewer", "view"],
      ["editor", "edit"],
      ["boss", "admin"],
    ] as const) {
      const bound = await kubectl([
        "create",
        "rolebinding",
        user,
        "-n",
        ns,
        `--clusterrole=${role}`,
        `--user=${user}`,
      ]);
      assert.equal(bound.code, 0, bound.stderr);
    }
    const table: [string, string, string, string | undefined, boolean][] = [
      ["viewer", "get", "pipelines", "logs", true],
      ["viewer", "list", "workspaces", undefined, true],
      ["viewer", "get", "workspaces", "files", false],
      ["viewer", "create", "workspaces", "exec", false],
      ["viewer", "create", "agentruntimes", "tasks", false],
      ["viewer", "create", "workspaces", undefined, false],
      ["editor", "get", "workspaces", "files", true],
      ["editor", "update", "workspaces", "files", true],
      ["editor", "create", "workspaces", "exec", true],
      ["editor", "create", "agentruntimes", "tasks", true],
      ["editor", "get", "agentruntimes", "tasks", true],
      ["editor", "get", "pipelines", "logs", true],
      ["editor", "create", "workspaces", undefined, true],
      ["boss", "create", "workspaces", "exec", true],
      ["boss", "update", "workspaces", "files", true],
      ["nobody", "get", "pipelines", "logs", false],
    ];
    // The aggregation may land role by role: wait for the last row of each to hold.
    await waitFor("every built-in role to carry its agentry rules", async () =>
      may("boss", ns, "update", "workspaces", "files"),
    );
    for (const [user, verb, resource, sub, want] of table)
      assert.equal(
        await may(user, ns, verb, resource, sub),
        want,
        `${user} ${verb} ${resource}${sub ? `/${sub}` : ""}`,
      );
  });
});
