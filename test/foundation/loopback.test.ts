// Loopback only: nothing the tests start may connect outside 127.0.0.0/8 and ::1.
// - The run itself is in a network namespace with only loopback (test/harness/netns.ts):
//   a deliberate dial to a pod IP or the internet fails with ENETUNREACH.
// - The operator resolves every pod it dials through its one pod address map: a pod backed
//   by a real process goes to loopback, a pod without one is never dialled, and nothing
//   resolves to a pod IP (its own log and metrics say so).
// - A runtime process that cannot start shows in its pod's status and Events, not as a hang.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { agentPod, api, createCR, testNamespace, waitFor } from "../harness/cluster.ts";
import { inLoopbackNetns } from "../harness/netns.ts";
import { startOperator } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";

const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);
const core = () => api(k8s.CoreV1Api);

function dial(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5000 });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("timeout");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const isLoopback = (address: string) =>
  /^127\.\d+\.\d+\.\d+:\d+$/.test(address) || address.startsWith("[::1]:");

const createAgent = (namespace: string, name: string, env: { name: string; value: string }[] = []) =>
  createCR(namespace, "AgentRuntime", name, {
    image: "registry.example/agent:1",
    model: { provider: "echo", model: "echo-1" },
    env,
  });

type Status = { phase?: string; readinessReason?: string };
const agentStatus = async (namespace: string, name: string): Promise<Status> =>
  (
    (await custom().getNamespacedCustomObject({ ...group("agentruntimes"), namespace, name })) as {
      status?: Status;
    }
  ).status ?? {};

describe("loopback only", () => {
  it("runs in a network namespace where a non-loopback dial fails at once", async (t) => {
    if (!inLoopbackNetns()) {
      // Only an explicit opt-out (AGENTRY_LOOPBACK_NETNS=0, or no root) gets here; CI refuses it.
      assert.notEqual(process.env.CI === "true" && process.env.AGENTRY_LOOPBACK_NETNS !== "0", true);
      t.skip("not in the loopback-only namespace (needs root; see test/harness/netns.ts)");
      return;
    }
    // A kwok pod IP, a ClusterIP, a public address: none is reachable from here.
    for (const host of ["10.244.0.5", "10.96.0.1", "192.0.2.1"])
      assert.equal(await dial(host, 8080), "ENETUNREACH");
    // Loopback works.
    const { createServer } = await import("node:net");
    const server = createServer((s) => s.end()).listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as { port: number };
    assert.equal(await dial("127.0.0.1", port), "connected");
    server.close();
  });

  it("the operator dials pods only through the map, and only loopback", async (t) => {
    const backed = await testNamespace(t);
    const unbacked = await testNamespace(t);
    const pods = await PodBackends.start({ namespaces: [backed] });
    t.after(() => pods.stop());
    const operator = await startOperator(t, {
      namespaces: [backed, unbacked],
      leaderElect: false,
      podAddressMap: pods.mapFile,
    });

    // A fleet of real sandbox processes with a workspace placed on one of them.
    await createCR(backed, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 2,
      maxReplicas: 3,
    });
    await createCR(backed, "Workspace", "ws", { fleetRef: { name: "fleet" }, ownerId: "alice" });
    const ws = await waitFor(
      "the workspace Ready on a sandbox process",
      async () => {
        const w = (await custom().getNamespacedCustomObject({
          ...group("workspaces"),
          namespace: backed,
          name: "ws",
        })) as { status?: { phase?: string; sandboxPod?: string } };
        return w.status?.phase === "Ready" ? w : undefined;
      },
      { timeoutMs: 90_000 },
    );
    const ids = await pods.workspacesOn(backed, ws.status!.sandboxPod!);
    assert.deepEqual(ids, [`${backed}.ws`], "the sandbox process holds the workspace");

    // Agents whose pods run but are not ready: the operator asks the agent itself (/readyz),
    // through the map for the backed one; the unbacked one it does not dial at all.
    await createAgent(backed, "agent");
    await createAgent(unbacked, "agent");
    const notReady = async (namespace: string) => {
      const pod = await waitFor(`agent pod in ${namespace} running`, async () => {
        const pod = await agentPod(namespace, "agent");
        return pod?.status?.podIP ? pod : undefined;
      });
      await waitFor(
        `agent process in ${namespace}`,
        () => namespace !== backed || pods.agentAddressOf(backed, "agent"),
      );
      await core().patchNamespacedPodStatus(
        {
          name: pod.metadata!.name!,
          namespace,
          body: {
            status: {
              conditions: [
                { type: "ContainersReady", status: "False" },
                { type: "Ready", status: "False", reason: "ContainersNotReady" },
              ],
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    };
    await notReady(backed);
    await notReady(unbacked);
    // The backed agent answers /readyz (echo provider: "ready"), so the operator knows the pod
    // is simply not marked ready yet; the unbacked one falls back to what Kubernetes knows.
    const fallback = await waitFor("the unbacked agent's Kubernetes-only reason", async () => {
      const s = await agentStatus(unbacked, "agent");
      return s.phase === "Starting" ? s : undefined;
    });
    assert.match(fallback.readinessReason ?? "", /running but not ready yet/);

    // What the operator resolved, from its own log: loopback addresses or nothing, never a pod IP.
    const resolutions = await waitFor("the operator to resolve both agents", () => {
      const r = operator.logs.filter((l) => l.message === "pod address") as {
        pod: string;
        via: string;
        address?: string;
      }[];
      // An agent's pod is `agent-<template hash>`.
      const agentIn = (ns: string, x: { pod: string }) =>
        new RegExp(`^${ns}/agent-[0-9a-z]{10}$`).test(x.pod);
      return r.some((x) => agentIn(backed, x) && x.via === "map") &&
        r.some((x) => agentIn(unbacked, x) && x.via === "none")
        ? r
        : undefined;
    });
    assert.ok(resolutions.length >= 4, "sandboxes and agents were resolved");
    for (const r of resolutions) {
      assert.notEqual(r.via, "pod-ip", `${r.pod} resolved to its pod IP`);
      if (r.via === "map") assert.ok(isLoopback(r.address ?? ""), `${r.pod} → ${r.address}`);
    }
    assert.equal(await operator.counter("agentry_pod_address_resolutions_total", { via: "pod-ip" }), 0);
    assert.ok((await operator.counter("agentry_pod_address_resolutions_total", { via: "map" })) >= 3);
    for (const address of pods.addresses()) assert.ok(isLoopback(address), address);
  });

  it("a runtime process that cannot start shows in its pod's status and Events", async (t) => {
    const namespace = await testNamespace(t);
    const pods = await PodBackends.start({ namespaces: [namespace], kinds: ["agent"] });
    t.after(() => pods.stop());
    await startOperator(t, { namespaces: [namespace], leaderElect: false, podAddressMap: pods.mapFile });
    // A setting the agent program rejects at start: it exits with a message.
    await createAgent(namespace, "broken", [{ name: "AGENTRY_MAX_CONCURRENT_TASKS", value: "lots" }]);
    const pod = await waitFor(
      "the pod to show the crash",
      async () => {
        const p = await agentPod(namespace, "broken");
        const waiting = p?.status?.containerStatuses?.[0]?.state?.waiting;
        return waiting?.reason === "CrashLoopBackOff" ? p : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(pod.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
    assert.match(
      pod.status?.containerStatuses?.[0]?.state?.waiting?.message ?? "",
      /AGENTRY_MAX_CONCURRENT_TASKS/,
    );
    const events = await waitFor("a BackOff event", async () => {
      const list = await core().listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${pod.metadata!.name},reason=BackOff`,
      });
      return list.items.length ? list.items : undefined;
    });
    assert.match(events[0]!.message ?? "", /AGENTRY_MAX_CONCURRENT_TASKS/);
    // The AgentRuntime says it too, in the words the operator uses for a crash loop.
    const s = await waitFor("the AgentRuntime to report the crash", async () => {
      const st = await agentStatus(namespace, "broken");
      return st.phase === "Error" ? st : undefined;
    });
    assert.match(s.readinessReason ?? "", /crash|CrashLoopBackOff/i);
  });
});
