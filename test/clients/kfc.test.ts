// clients/kubernetes: the typed kinds kubernetes-fluent-client's CRD generator makes from
// crds/. Its example program, run as a user runs it (plain `node`, no transpiler), applies an
// AgentRuntime with server-side apply and watches it until the real operator, with a real
// agent process behind kwok's pod, reports it Ready.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { api, run, testNamespace } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { repoRoot } from "../harness/paths.ts";
import { PodBackends } from "../harness/pods.ts";
import { enumsToConsts } from "../../hack/gen/kfc.ts";

describe("typed kinds for kubernetes-fluent-client", () => {
  it("turns a generated enum into a const object and a union type of the same name", () => {
    const out = enumsToConsts('export enum Phase {\n  Ready = "Ready",\n  Not_ready = "not-ready",\n}\n');
    assert.equal(
      out,
      'export const Phase = {\n  Ready: "Ready",\n  Not_ready: "not-ready",\n} as const;\n' +
        "export type Phase = (typeof Phase)[keyof typeof Phase];\n",
    );
    assert.throws(() => enumsToConsts("export enum N {\n  A = 1,\n}"), /cannot convert member "A = 1,"/);
  });

  it("builds as a package: JavaScript and declarations that load without a transpiler", async () => {
    const out = join(repoRoot, ".tmp", `kfc-build-${process.pid}`);
    const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
    const project = join(repoRoot, "clients", "kubernetes", "tsconfig.json");
    try {
      const res = await run(process.execPath, [tsc, "-p", project, "--outDir", out]);
      assert.equal(res.code, 0, res.stdout + res.stderr);
      const built = (await import(join(out, "index.js"))) as {
        AgentRuntime: new () => { kind?: string };
        WorkspaceTypes: { Phase: Record<string, string> };
      };
      assert.equal(typeof built.AgentRuntime, "function");
      assert.equal(built.WorkspaceTypes.Phase.Ready, "Ready");
      assert.match(await readFile(join(out, "index.d.ts"), "utf8"), /export \{ AgentRuntime \}/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("the example applies an AgentRuntime and watches it become Ready", async (t) => {
    const ns = await testNamespace(t);
    const pods = await PodBackends.start({ namespaces: [ns] });
    t.after(() => pods.stop());
    await startOperator(t, { namespaces: [ns], leaderElect: false, podAddressMap: pods.mapFile });

    const example = join(repoRoot, "clients", "kubernetes", "examples", "apply-and-watch.ts");
    const res = await run(process.execPath, [example, ns, "typed"]);
    assert.equal(res.code, 0, `example failed:\n${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, new RegExp(`applied agentruntime ${ns}/typed`));
    assert.match(res.stdout, new RegExp(`agentruntime ${ns}/typed is Ready at http://typed\\.${ns}\\.svc`));

    // What it applied is an ordinary AgentRuntime, owned by KFC's field manager.
    const agent = (await api(k8s.CustomObjectsApi).getNamespacedCustomObject({
      group: "agentry.dev",
      version: "v1alpha1",
      plural: "agentruntimes",
      namespace: ns,
      name: "typed",
    })) as { spec: { model: { provider: string } }; metadata: { managedFields: { manager: string }[] } };
    assert.equal(agent.spec.model.provider, "echo");
    assert.ok(
      agent.metadata.managedFields.some((f) => f.manager === "pepr"),
      `managers: ${agent.metadata.managedFields.map((f) => f.manager).join(", ")}`,
    );
  });
});
