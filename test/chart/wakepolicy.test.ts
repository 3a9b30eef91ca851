// The chart's ValidatingAdmissionPolicy on the real apiserver: the gateway's ServiceAccount,
// which RBAC lets patch Workspaces, may only remove a Workspace's agentry.dev/idle-suspended
// annotation (waking it); any other change it tries is refused, and nobody else is affected.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { createCR, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { render, type Doc } from "./helm.ts";

const IDLE = "agentry.dev/idle-suspended";

describe("the gateway's wake-only policy", () => {
  it("lets the gateway remove the idle annotation and nothing else", async (t) => {
    const ns = await testNamespace(t);
    // The policy for a release whose gateway runs as a ServiceAccount of this test's namespace.
    const docs = await render(["--namespace", ns]);
    const policy = docs.filter((d: Doc) => d.kind.startsWith("ValidatingAdmissionPolicy"));
    assert.equal(policy.length, 2, "the policy and its binding");
    const text = policy.map((d) => yaml.dump(d)).join("---\n");
    const applied = await kubectl(["apply", "-f", "-"], text);
    assert.equal(applied.code, 0, applied.stderr);
    t.after(async () => void (await kubectl(["delete", "--ignore-not-found", "-f", "-"], text)));
    const binding = policy.find((d) => d.kind === "ValidatingAdmissionPolicyBinding")!;
    const gateway = `system:serviceaccount:${ns}:${binding.metadata.name.replace(/-wake-only$/, "")}`;
    const rbac = [
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "gw" },
        rules: [{ apiGroups: ["agentry.dev"], resources: ["workspaces"], verbs: ["get", "patch"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "gw" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "gw" },
        subjects: [{ kind: "User", name: gateway }],
      },
    ];
    const granted = await kubectl(
      ["apply", "-n", ns, "-f", "-"],
      rbac.map((d) => yaml.dump(d)).join("---\n"),
    );
    assert.equal(granted.code, 0, granted.stderr);
    await createCR(ns, "Workspace", "w", { fleetRef: { name: "fleet" } });
    const annotate = await kubectl(["annotate", "-n", ns, "workspace", "w", `${IDLE}=2026-12-01T12:00:00Z`]);
    assert.equal(annotate.code, 0, annotate.stderr);

    const patch = (as: string | undefined, body: unknown, dryRun = true) =>
      kubectl([
        "patch",
        "-n",
        ns,
        "workspace",
        "w",
        "--type=merge",
        "-p",
        JSON.stringify(body),
        ...(dryRun ? ["--dry-run=server"] : []),
        ...(as ? [`--as=${as}`] : []),
      ]);
    // The policy is in force once the apiserver has compiled it.
    const refused = await waitFor("the policy to refuse the gateway's spec change", async () => {
      const res = await patch(gateway, { spec: { suspended: true } });
      return res.code !== 0 ? res : undefined;
    });
    assert.match(refused.stderr, /may only wake a Workspace/);
    for (const body of [
      { metadata: { annotations: { other: "x" } } },
      { metadata: { labels: { x: "y" } } },
      { metadata: { annotations: { [IDLE]: "2027-01-01T00:00:00Z" } } },
      { metadata: { finalizers: ["example.com/keep"] } },
    ]) {
      const res = await patch(gateway, body);
      assert.notEqual(res.code, 0, `refused: ${JSON.stringify(body)}`);
      assert.match(res.stderr, /may only wake a Workspace/);
    }
    // Others are not affected; the gateway may wake it.
    assert.equal((await patch(undefined, { spec: { suspended: true } })).code, 0);
    const woken = await patch(gateway, { metadata: { annotations: { [IDLE]: null } } }, false);
    assert.equal(woken.code, 0, woken.stderr);
    const got = await kubectl(["get", "-n", ns, "workspace", "w", "-o", "json"]);
    const annotations = (JSON.parse(got.stdout) as { metadata: { annotations?: Record<string, string> } })
      .metadata.annotations;
    assert.equal(annotations?.[IDLE], undefined);
  });
});
