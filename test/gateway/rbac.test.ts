// Authorisation is the apiserver's RBAC: the gateway impersonates the caller, so a caller
// can never do through the gateway what RBAC denies it, and the cluster stays unchanged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { startGateway } from "./harness.ts";

const pipeline = (name: string) => ({
  metadata: { name },
  spec: { schedule: "@once", steps: [{ name: "s", image: "busybox:1.36", command: ["true"] }] },
});

async function limitedServiceAccount(ns: string): Promise<string> {
  const manifest = `
apiVersion: v1
kind: ServiceAccount
metadata: { name: limited, namespace: ${ns} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pipeline-reader, namespace: ${ns} }
rules:
  - apiGroups: [agentry.dev]
    resources: [pipelines]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: limited-reads, namespace: ${ns} }
subjects: [{ kind: ServiceAccount, name: limited, namespace: ${ns} }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pipeline-reader }
`;
  const r = await kubectl(["apply", "-f", "-"], manifest);
  assert.equal(r.code, 0, r.stderr);
  return `system:serviceaccount:${ns}:limited`;
}

describe("gateway authorisation through Kubernetes RBAC", () => {
  it("a caller RBAC denies gets 403 and the cluster is unchanged", async (t) => {
    const ns = await testNamespace(t);
    const user = await limitedServiceAccount(ns);
    const gw = await startGateway(t, {
      tokens: {
        "limited-token": {
          user,
          groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`],
          via: "token",
        },
      },
    });
    const base = `/v1/namespaces/${ns}/pipelines`;
    assert.equal((await gw.call("POST", base, { body: pipeline("existing") })).status, 201);

    const as = { token: "limited-token" };
    const listed = await gw.call("GET", base, as);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.equal((listed.body.items as unknown[]).length, 1);

    const created = await gw.call("POST", base, { ...as, body: pipeline("sneaky") });
    assert.equal(created.status, 403, JSON.stringify(created.body));
    assert.match(created.headers.get("content-type") ?? "", /problem\+json/);
    assert.match(String(created.body.detail), /forbidden/i);
    const patched = await gw.call("PATCH", `${base}/existing`, {
      ...as,
      body: { metadata: { labels: { x: "y" } } },
    });
    assert.equal(patched.status, 403);
    const run = await gw.call("POST", `${base}/existing/runs`, as);
    assert.equal(run.status, 403);
    const deleted = await gw.call("DELETE", `${base}/existing`, as);
    assert.equal(deleted.status, 403);
    const other = await gw.call("GET", `/v1/namespaces/${ns}/agentruntimes`, as);
    assert.equal(other.status, 403);
    const watch = await gw.call("GET", `/v1/watch/namespaces/${ns}/pipelines`, as);
    assert.equal(watch.status, 403);

    const names = await kubectl(["get", "pipelines", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
    assert.equal(names.stdout, "existing");
    const labels = await kubectl([
      "get",
      "pipeline",
      "existing",
      "-n",
      ns,
      "-o",
      "jsonpath={.metadata.labels}",
    ]);
    assert.equal(labels.stdout, "");
    const annotations = await kubectl(["get", "pipeline", "existing", "-n", ns, "-o", "json"]);
    assert.doesNotMatch(annotations.stdout, /run-now/);

    await gw.auditWritten();
    const audit = await gw.pool.query<{ verb: string; outcome: string; status: number }>(
      "SELECT verb, outcome, status FROM audit_log WHERE actor = $1 ORDER BY id",
      [user],
    );
    assert.deepEqual(
      audit.rows.map((r) => [r.verb, r.outcome, r.status]),
      [
        ["create", "failed", 403],
        ["patch", "failed", 403],
        ["run", "failed", 403],
        ["delete", "failed", 403],
      ],
    );
  });

  it("accepts Kubernetes service-account tokens through TokenReview", async (t) => {
    const ns = await testNamespace(t);
    await limitedServiceAccount(ns);
    const token = await kubectl(["create", "token", "limited", "-n", ns]);
    assert.equal(token.code, 0, token.stderr);
    const gw = await startGateway(t, { tokenReview: true });
    const as = { token: token.stdout.trim() };
    const listed = await gw.call("GET", `/v1/namespaces/${ns}/pipelines`, as);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const created = await gw.call("POST", `/v1/namespaces/${ns}/pipelines`, { ...as, body: pipeline("x") });
    assert.equal(created.status, 403);
    const bogus = await gw.call("GET", `/v1/namespaces/${ns}/pipelines`, { token: "not-a-real-token" });
    assert.equal(bogus.status, 401);
  });

  it("serves anonymous callers only when enabled, as system:anonymous", async (t) => {
    const ns = await testNamespace(t);
    const closed = await startGateway(t);
    assert.equal((await closed.call("GET", `/v1/namespaces/${ns}/pipelines`, { token: null })).status, 401);
    const open = await startGateway(t, { allowAnonymous: true });
    const r = await open.call("GET", `/v1/namespaces/${ns}/pipelines`, { token: null });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.match(String(r.body.detail), /system:anonymous/);
  });
});
