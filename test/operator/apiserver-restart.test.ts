// The operator survives an apiserver restart: watches fail, informers reconnect (re-listing
// when their resourceVersion is gone), and work continues without a process restart. Uses
// a control plane of its own, since restarting the shared one would disturb other tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spawnSync } from "node:child_process";
import * as k8s from "@kubernetes/client-node";
import { ControlPlane } from "../harness/controlplane.ts";
import { installCrds } from "../harness/install.ts";
import { startOperator } from "../harness/operator.ts";
import { waitFor } from "../harness/cluster.ts";
import { binary } from "../harness/binaries.ts";

describe("apiserver restart", () => {
  it("reconnects and keeps reconciling", async (t) => {
    const cp = await ControlPlane.start({ nodes: 1 });
    t.after(() => cp.stop());
    installCrds(cp.kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const apply = (name: string) =>
      spawnSync(binary("kubectl"), ["apply", "-f", "-"], {
        env: { ...process.env, KUBECONFIG: cp.kubeconfig },
        input: JSON.stringify({
          apiVersion: "agentry.dev/v1alpha1",
          kind: "AgentRuntime",
          metadata: { name, namespace: "default" },
          spec: { image: "r.example/a:1" },
        }),
        encoding: "utf8",
      });
    const phase = async (name: string) =>
      (
        (await custom.getNamespacedCustomObject({
          group: "agentry.dev",
          version: "v1alpha1",
          plural: "agentruntimes",
          namespace: "default",
          name,
        })) as {
          status?: { phase?: string };
        }
      ).status?.phase;

    const operator = await startOperator(t, {
      namespaces: ["default"],
      kubeconfig: cp.kubeconfig,
      leaderElect: false,
    });
    assert.equal(apply("before").status, 0);
    await waitFor("before Ready", async () => (await phase("before")) === "Ready");

    const t0 = Date.now();
    await cp.component("kube-apiserver").stop("SIGTERM");
    const t1 = Date.now();
    cp.restart("kube-apiserver");
    await cp.waitReady();
    const t2 = Date.now();
    assert.equal(apply("after").status, 0);
    await waitFor(
      "after Ready once the operator reconnected",
      async () => (await phase("after")) === "Ready",
      {
        timeoutMs: 60_000,
      },
    );
    t.diagnostic(`stop ${t1 - t0} ms, restart ${t2 - t1} ms, converge ${Date.now() - t2} ms`);
    assert.equal(operator.child.exitCode, null, "the operator did not exit");
    assert.ok(
      operator.logs.some((l) => /watch failed|list failed/.test(String(l.message))),
      "the informers noticed the outage and recovered",
    );
  });
});
