// Issue 12, item 6: isolation. A gateway caller bound to namespace A cannot read or change
// namespace B; secret values and tokens never reach logs, Events or status; every Pod the
// operator makes (AgentRuntime, Pipeline run, SandboxFleet sandbox) is admitted under Pod
// Security "restricted"; the chart's RBAC has no wildcard and no cluster-wide Secret read
// beyond the operator's tokens Secrets (named agentry-tokens).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { join } from "node:path";
import { kubectl, run, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { repoRoot } from "../harness/paths.ts";
import { startWebhook, webhookId } from "../harness/webhook.ts";
import { ADMIN, createFleet } from "../gateway/harness.ts";
import { alive, gatewayWithTokens } from "./processes.ts";

const RESTRICTED = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
};

async function apply(manifest: unknown): Promise<void> {
  const r = await kubectl(["apply", "-f", "-"], JSON.stringify(manifest));
  assert.equal(r.code, 0, r.stderr);
}

const editorRole = (ns: string, user: string) => ({
  apiVersion: "v1",
  kind: "List",
  items: [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "agentry-editor", namespace: ns },
      rules: [
        {
          apiGroups: ["agentry.dev"],
          resources: ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"],
          verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "agentry-editor", namespace: ns },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "agentry-editor" },
    },
  ],
});

const workspace = (name: string) => ({ metadata: { name }, spec: { fleetRef: { name: "fleet" } } });

describe("isolation", () => {
  it("a gateway caller bound to namespace A can neither read nor change namespace B", async (t) => {
    const a = await testNamespace({ name: "iso-a", after: (fn) => t.after(fn) });
    const b = await testNamespace({ name: "iso-b", after: (fn) => t.after(fn) });
    const user = `chaos-user-${randomBytes(3).toString("hex")}`;
    await apply(editorRole(a, user));
    // The gateway applies the admission rules: a Workspace needs its fleet to exist.
    await createFleet(a);
    await createFleet(b);
    const gw = await gatewayWithTokens(t, {
      "team-a": { user, groups: ["team-a"] },
      admin: { user: ADMIN.user, groups: ADMIN.groups },
    });
    assert.equal(
      (await gw.call("POST", `/v1/namespaces/${b}/workspaces`, { token: "admin", body: workspace("theirs") }))
        .status,
      201,
    );
    const as = { token: "team-a" };
    assert.equal(
      (await gw.call("POST", `/v1/namespaces/${a}/workspaces`, { ...as, body: workspace("mine") })).status,
      201,
    );
    assert.equal((await gw.call("GET", `/v1/namespaces/${a}/workspaces/mine`, as)).status, 200);

    const B = `/v1/namespaces/${b}`;
    const attempts: [string, string, unknown?][] = [
      ["GET", `${B}/workspaces`],
      ["GET", `${B}/workspaces/theirs`],
      ["GET", `${B}/workspaces/theirs/status`],
      ["GET", `/v1/watch/namespaces/${b}/workspaces`],
      ["POST", `${B}/workspaces`, workspace("intruder")],
      ["PUT", `${B}/workspaces/theirs`, workspace("theirs")],
      ["PATCH", `${B}/workspaces/theirs`, { metadata: { labels: { owned: "yes" } } }],
      ["DELETE", `${B}/workspaces/theirs`],
      ["GET", `${B}/agentruntimes`],
      ["POST", `${B}/pipelines/x/runs`],
      // A body naming B while the URL names A is refused before any write.
      [
        "POST",
        `/v1/namespaces/${a}/workspaces`,
        { ...workspace("sneaky"), metadata: { name: "sneaky", namespace: b } },
      ],
    ];
    const answers: string[] = [];
    for (const [method, path, body] of attempts) {
      const r = await gw.call(method, path, { ...as, ...(body ? { body } : {}) });
      answers.push(`${method} ${path.replace(b, "B").replace(a, "A")} → ${r.status}`);
      assert.ok(
        r.status === 403 || r.status === 422,
        `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
      );
    }
    t.diagnostic(answers.join("; "));
    const inB = await kubectl(["get", "workspaces", "-n", b, "-o", "json"]);
    const items = (JSON.parse(inB.stdout) as { items: { metadata: { name: string; labels?: object } }[] })
      .items;
    assert.deepEqual(
      items.map((i) => [i.metadata.name, i.metadata.labels ?? {}]),
      [["theirs", {}]],
      "namespace B unchanged",
    );
  });

  it("never shows secret values or tokens in logs, Events or status; every Pod passes restricted", async (t) => {
    const secret = `chaos-secret-${randomBytes(12).toString("hex")}`;
    const gatewayToken = `chaos-token-${randomBytes(12).toString("hex")}`;
    const ident = webhookId();
    const ns = await testNamespace(t, { ...RESTRICTED, ...ident.labels });
    await apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "model-key", namespace: ns },
      stringData: { "api-key": secret, other: secret },
    });
    const hook = await startWebhook(t, ident, { namespace: ns });
    const operator = await startOperator(t, { namespaces: [ns], leaderElect: false });
    const gw = await gatewayWithTokens(
      t,
      { [gatewayToken]: { user: ADMIN.user, groups: ADMIN.groups } },
      { AGENTRY_LOG_LEVEL: "debug" },
    );
    const as = { token: gatewayToken };
    const fromSecret = { secretKeyRef: { name: "model-key", key: "api-key" } };

    const agent = await gw.call("POST", `/v1/namespaces/${ns}/agentruntimes`, {
      ...as,
      body: {
        metadata: { name: "agent" },
        spec: {
          image: "registry.example/agent:1",
          model: { provider: "openai", model: "m", credentialsSecretRef: { name: "model-key" } },
          env: [{ name: "TOKEN", valueFrom: fromSecret }],
          envFrom: [{ secretRef: { name: "model-key" }, prefix: "K_" }],
        },
      },
    });
    assert.equal(agent.status, 201, JSON.stringify(agent.body));
    const run = await gw.call("POST", `/v1/namespaces/${ns}/pipelines`, {
      ...as,
      body: {
        metadata: { name: "once" },
        spec: {
          steps: [
            { name: "a", image: "registry.example/tool:1", env: [{ name: "K", valueFrom: fromSecret }] },
          ],
        },
      },
    });
    assert.equal(run.status, 201, JSON.stringify(run.body));
    await apply({
      apiVersion: "agentry.dev/v1alpha1",
      kind: "SandboxFleet",
      metadata: { name: "fleet", namespace: ns },
      spec: { template: { image: "registry.example/sandbox:1" }, minReplicas: 1, maxReplicas: 2 },
    });
    // Error paths too: a missing key, a wrong token that is the secret itself.
    const missing = await gw.call("POST", `/v1/namespaces/${ns}/agentruntimes`, {
      ...as,
      body: {
        metadata: { name: "broken" },
        spec: {
          image: "registry.example/agent:1",
          env: [{ name: "X", valueFrom: { secretKeyRef: { name: "model-key", key: "nope" } } }],
        },
      },
    });
    assert.ok(missing.status >= 400 && missing.status < 500, JSON.stringify(missing.body));
    assert.equal((await gw.call("GET", `/v1/namespaces/${ns}/agentruntimes`, { token: secret })).status, 401);

    // Pod Security "restricted" is enforced here: each kind of operator-made Pod must exist.
    const pods = await waitFor("an AgentRuntime Pod, a Pipeline run Pod and a sandbox Pod", async () => {
      const r = await kubectl(["get", "pods", "-n", ns, "-o", "json"]);
      const list = (
        JSON.parse(r.stdout) as { items: { metadata: { name: string; labels?: Record<string, string> } }[] }
      ).items;
      const has = (key: string) => list.some((p) => p.metadata.labels?.[key] !== undefined);
      return has("agentry.dev/agent-runtime") && has("job-name") && has("agentry.dev/sandbox-fleet")
        ? list
        : undefined;
    });
    t.diagnostic(`pods admitted under restricted: ${pods.map((p) => p.metadata.name).join(", ")}`);
    await waitFor("the AgentRuntime Ready", async () => {
      const r = await kubectl(["get", "ar", "agent", "-n", ns, "-o", "jsonpath={.status.phase}"]);
      return r.stdout === "Ready";
    });

    const events = await kubectl(["get", "events", "-n", ns, "-o", "json"]);
    const violations = events.stdout.match(/violates PodSecurity[^"]*/g) ?? [];
    assert.deepEqual(violations, [], "no Pod was refused by Pod Security");
    // The operator's signing key (its Secret in its namespace, here the test's): the private
    // key, and the Secret's data as stored, must appear nowhere either.
    const ring = JSON.parse(
      (await kubectl(["get", "secret", "agentry-operator-signing-key", "-n", ns, "-o", "json"])).stdout,
    ) as { data: Record<string, string> };
    const stored = ring.data["keyring.json"]!;
    const privateKey = (
      JSON.parse(Buffer.from(stored, "base64").toString()) as { current: { privateKeyPem: string } }
    ).current.privateKeyPem
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    const statuses = await kubectl(["get", "agentry", "-n", ns, "-o", "json"]);
    const podsJson = await kubectl([
      "get",
      "pods,services,jobs,deployments,configmaps",
      "-n",
      ns,
      "-o",
      "json",
    ]);
    const captured: Record<string, string> = {
      "operator log": operator.logs.map((l) => JSON.stringify(l)).join("\n"),
      "webhook log": hook.logs.map((l) => JSON.stringify(l)).join("\n"),
      "gateway log": gw.logs.join("\n"),
      events: events.stdout,
      "agentry objects and status": statuses.stdout,
      "children (pods, services, jobs, deployments, configmaps)": podsJson.stdout,
    };
    for (const [where, text] of Object.entries(captured)) {
      assert.ok(text.length > 0, `${where} captured`);
      for (const [what, value] of [
        ["the Secret value", secret],
        ["the gateway token", gatewayToken],
        ["the operator's private signing key", privateKey],
        ["the operator's key-ring Secret data", stored],
        ["the Secret value in base64", Buffer.from(secret).toString("base64")],
      ] as const)
        assert.ok(!text.includes(value), `${what} appears in the ${where}`);
    }
    assert.ok(alive(operator.child) && alive(gw.child));
  });

  it("the chart's RBAC has no wildcard and no cluster-wide Secret read but agentry-tokens, in every profile", async () => {
    const chart = join(repoRoot, "charts", "agentry");
    type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[] };
    type Doc = { kind: string; metadata: { name: string }; rules?: Rule[] };
    const problems: string[] = [];
    for (const profile of ["", "values-dev.yaml", "values-staging.yaml", "values-prod.yaml"]) {
      const args = [
        "template",
        "agentry",
        chart,
        "--namespace",
        "agentry-system",
        "--kube-version",
        "1.36.0",
      ];
      if (profile) args.push("-f", join(chart, profile));
      const res = await run("helm", args);
      assert.equal(res.code, 0, res.stderr);
      const docs = (yaml.loadAll(res.stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null);
      const roles = docs.filter((d) => d.kind === "ClusterRole" || d.kind === "Role");
      assert.ok(roles.length >= 3, `${profile || "default"}: roles rendered`);
      for (const role of roles) {
        const where = `${profile || "default"} ${role.kind} ${role.metadata.name}`;
        for (const rule of role.rules ?? []) {
          for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames])
            if (field?.includes("*")) problems.push(`${where}: wildcard in ${JSON.stringify(rule)}`);
          // Cluster-wide, only the operator's: creating Secrets (RBAC cannot limit create by
          // name) and reading or writing those named agentry-tokens, never others.
          const tokensOnly =
            role.metadata.name.endsWith("-operator") &&
            (rule.resourceNames
              ? rule.resourceNames.length === 1 && rule.resourceNames[0] === "agentry-tokens"
              : rule.verbs?.length === 1 && rule.verbs[0] === "create");
          if (role.kind === "ClusterRole" && rule.resources?.includes("secrets") && !tokensOnly)
            problems.push(`${where}: cluster-wide access to Secrets (${rule.verbs?.join(",")})`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
