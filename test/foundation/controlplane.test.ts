// Proves the local control plane is real: the apiserver validates, the controller
// manager's controllers and the scheduler act, and kwok runs pods on fake nodes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";

const labels = { app: "harness-check" };
const container = { name: "main", image: "registry.example/agentry/noop:1" };

describe("local control plane", () => {
  it("has Ready fake nodes visible to kubectl", async () => {
    const res = await kubectl([
      "get",
      "nodes",
      "-o",
      "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}",
    ]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split("\n");
    assert.ok(lines.length >= 3, `expected at least 3 nodes, got ${res.stdout}`);
    for (const line of lines) assert.match(line, /^kwok-node-\d+=True$/);
  });

  it("reports the pinned Kubernetes version", async () => {
    const res = await kubectl(["version", "-o", "json"]);
    assert.equal(res.code, 0, res.stderr);
    const v = JSON.parse(res.stdout) as { serverVersion: { gitVersion: string; minor: string } };
    assert.match(v.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
    assert.ok(Number(v.serverVersion.minor) >= 34, `server minor ${v.serverVersion.minor} < 34`);
  });

  it("turns a Deployment into a ReplicaSet and Ready pods", async (t) => {
    const namespace = await testNamespace(t);
    const apps = api(k8s.AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [container] } },
        },
      },
    });
    const ready = await waitFor("3 ready replicas", async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace });
      return d.status?.readyReplicas === 3 ? d : undefined;
    });
    assert.equal(ready.status?.availableReplicas, 3);
    const rs = await apps.listNamespacedReplicaSet({ namespace });
    assert.equal(rs.items.length, 1);
    assert.equal(rs.items[0]?.metadata?.ownerReferences?.[0]?.name, "web");
    const pods = await api(k8s.CoreV1Api).listNamespacedPod({ namespace });
    assert.equal(pods.items.length, 3);
    for (const pod of pods.items) {
      assert.equal(pod.status?.phase, "Running");
      assert.match(pod.spec?.nodeName ?? "", /^kwok-node-/, "scheduled onto a fake node");
      assert.ok(pod.status?.podIP, "kwok assigned a pod IP");
    }
  });

  it("runs a Job to completion, and fails one whose pod is marked to fail", async (t) => {
    const namespace = await testNamespace(t);
    const batch = api(k8s.BatchV1Api);
    const job = (name: string, annotations: Record<string, string> = {}): k8s.V1Job => ({
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: { metadata: { annotations }, spec: { restartPolicy: "Never", containers: [container] } },
      },
    });
    await batch.createNamespacedJob({ namespace, body: job("ok") });
    await batch.createNamespacedJob({
      namespace,
      body: job("bad", { "kwok.agentry.dev/fail": "simulated failure" }),
    });
    const conditionOf = async (name: string, type: string) => {
      const j = await batch.readNamespacedJob({ name, namespace });
      return j.status?.conditions?.find((c) => c.type === type && c.status === "True");
    };
    await waitFor("job ok Complete", () => conditionOf("ok", "Complete"));
    const failed = await waitFor("job bad Failed", () => conditionOf("bad", "Failed"));
    assert.equal(failed.reason, "BackoffLimitExceeded");
    const ok = await batch.readNamespacedJob({ name: "ok", namespace });
    assert.equal(ok.status?.succeeded, 1);
  });

  it("accepts a CronJob and schedules it", async (t) => {
    const namespace = await testNamespace(t);
    const batch = api(k8s.BatchV1Api);
    await batch.createNamespacedCronJob({
      namespace,
      body: {
        metadata: { name: "tick" },
        spec: {
          schedule: "* * * * *",
          jobTemplate: {
            spec: { template: { spec: { restartPolicy: "Never", containers: [container] } } },
          },
        },
      },
    });
    const cj = await batch.readNamespacedCronJob({ name: "tick", namespace });
    assert.equal(cj.spec?.schedule, "* * * * *");
    assert.equal(cj.spec?.concurrencyPolicy, "Allow", "defaults applied by the apiserver");
  });

  it("garbage-collects children when their owner is deleted", async (t) => {
    const namespace = await testNamespace(t);
    const core = api(k8s.CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "owner" } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: "child",
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ name: "owner", namespace });
    await waitFor("child collected", async () => {
      const list = await core.listNamespacedConfigMap({ namespace });
      return !list.items.some((c) => c.metadata?.name === "child");
    });
  });

  it("rejects an invalid object on kubectl apply --dry-run=server", async (t) => {
    const namespace = await testNamespace(t);
    const bad = JSON.stringify({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "Not_A_Valid_Name", namespace },
      spec: {
        replicas: -1,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [container] } },
      },
    });
    const res = await kubectl(["apply", "--dry-run=server", "-f", "-"], bad);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /metadata\.name: Invalid value: "Not_A_Valid_Name"/);
    assert.match(res.stderr, /spec\.replicas: Invalid value: -1/);
    const good = bad.replace("Not_A_Valid_Name", "valid").replace('"replicas":-1', '"replicas":1');
    const ok = await kubectl(["apply", "--dry-run=server", "-f", "-"], good);
    assert.equal(ok.code, 0, ok.stderr);
    const list = await api(k8s.AppsV1Api).listNamespacedDeployment({ namespace });
    assert.equal(list.items.length, 0, "dry run persisted nothing");
  });
});
