// Two operator replicas share one Lease: only the leader reconciles; when the leader is
// killed with SIGKILL the standby takes over within the lease duration and converges.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";

const GROUP = { group: "agentry.dev", version: "v1alpha1", plural: "agentruntimes" };
const LEASE = ["--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];

async function createAgent(namespace: string, name: string): Promise<void> {
  await api(k8s.CustomObjectsApi).createNamespacedCustomObject({
    ...GROUP,
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "AgentRuntime",
      metadata: { name },
      spec: { image: "r.example/a:1" },
    },
  });
}

async function isReady(namespace: string, name: string): Promise<boolean> {
  const a = (await api(k8s.CustomObjectsApi).getNamespacedCustomObject({ ...GROUP, namespace, name })) as {
    status?: { phase?: string };
  };
  return a.status?.phase === "Ready";
}

describe("leader election", () => {
  it("runs one active replica and fails over after kill -9", async (t) => {
    const namespace = await testNamespace(t);
    const a = await startOperator(t, { namespaces: [namespace], args: LEASE });
    const b = await startOperator(t, { namespaces: [namespace], args: LEASE });
    const leaderOf = async (ops: OperatorProcess[]) => {
      const flags = await Promise.all(ops.map((o) => o.counter("agentry_leader")));
      return flags.filter((f) => f === 1).length === 1 ? ops[flags.indexOf(1)] : undefined;
    };
    const leader = await waitFor("exactly one leader", () => leaderOf([a, b]));
    const standby = leader === a ? b : a;

    await createAgent(namespace, "first");
    await waitFor("first Ready", () => isReady(namespace, "first"));
    assert.equal(
      await standby.counter("controller_runtime_reconcile_total"),
      0,
      "the standby reconciled nothing",
    );
    assert.equal(await standby.counter("agentry_writes_total"), 0, "the standby wrote nothing");
    assert.ok((await leader.counter("controller_runtime_reconcile_total")) > 0);

    await leader.kill("SIGKILL");
    const killedAt = Date.now();
    await createAgent(namespace, "second");
    await waitFor("standby takes over", async () => (await standby.counter("agentry_leader")) === 1, {
      timeoutMs: 30_000,
    });
    const failover = Date.now() - killedAt;
    assert.ok(
      failover <= 4_000 + 500 + 2_000,
      `failover took ${failover} ms (lease 4 s + retry 0.5 s + slack)`,
    );
    await waitFor("second Ready after failover", () => isReady(namespace, "second"));
    assert.ok(await isReady(namespace, "first"));
    const pods = await api(k8s.CoreV1Api).listNamespacedPod({ namespace });
    assert.deepEqual(
      pods.items.map((p) => p.metadata?.labels?.["agentry.dev/agent-runtime"]).sort(),
      ["first", "second"],
      "one Pod per AgentRuntime",
    );
  });

  it("hands the lease over at once on graceful shutdown", async (t) => {
    const namespace = await testNamespace(t);
    const args = ["--lease-duration=30s", "--renew-deadline=20s", "--retry-period=500ms"];
    const a = await startOperator(t, { namespaces: [namespace], args });
    await waitFor("a leads", async () => (await a.counter("agentry_leader")) === 1);
    const b = await startOperator(t, { namespaces: [namespace], args });
    const stoppedAt = Date.now();
    assert.equal(await a.kill("SIGTERM"), 0, "graceful exit code");
    await waitFor("b leads", async () => (await b.counter("agentry_leader")) === 1, { timeoutMs: 20_000 });
    assert.ok(Date.now() - stoppedAt < 10_000, "released lease taken well before its 30 s duration");
    assert.ok(a.logs.some((l) => l.message === "released the lease"));
  });
});
