// `make dev`'s bring-up (test/harness/platform.ts, the same function hack/dev.ts calls) on a
// control plane of its own, with examples/ applied: every example must become Current the
// way kstatus judges custom resources (Ready, observedGeneration, no Stalled/Reconciling),
// within a bound, with real sandbox and agent runtime processes behind the fake pods, and
// (SeaweedFS built) every workspace durable in the default object store.
import assert from "node:assert/strict";
import { mkdtemp, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startPlatform, waitForCurrent } from "../harness/platform.ts";
import { waitFor } from "../harness/process.ts";

interface Item {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { volumeName?: string; hostPath?: { path: string }; source?: { git?: { url: string } } };
  status: {
    sandboxPod: string;
    phase?: string;
    sourceCommit?: string;
    conditions?: { type: string; status: string; reason?: string }[];
  };
}

// The goal is 60 s on an idle machine; the test runs beside other suites.
const BOUND_MS = 120_000;

describe("make dev bring-up", () => {
  it("brings every example to Ready with real runtime processes", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-dev-test-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const platform = await startPlatform({ dir, examplesNamespace: "default" });
    t.after(() => platform.stop());
    const pods = platform.pods!;
    assert.ok(pods, "the local control plane's pods are backed by processes");

    const t0 = Date.now();
    const { ok, objects } = await waitForCurrent(platform.kubeconfig, "default", BOUND_MS);
    const report = objects.map((o) => `${o.status} ${o.kind}/${o.name} ${o.why ?? ""}`).join("\n");
    assert.ok(ok, `not every example became Current within ${BOUND_MS / 1000} s:\n${report}`);
    t.diagnostic(`all ${objects.length} examples Current in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ["AgentRuntime", "SandboxFleet", "Workspace", "Pipeline"]) assert.ok(kinds.has(k), k);

    // Every workspace's directory exists in its sandbox process.
    const get = (args: string[]) => {
      const res = platform.kubectl([...args, "-o", "json"]);
      assert.equal(res.status, 0, res.stderr);
      return JSON.parse(res.stdout) as { items: Item[] };
    };
    const workspaces = get(["get", "workspaces", "-n", "default"]).items;
    assert.ok(workspaces.length >= 4);
    for (const ws of workspaces) {
      const id = `default.${ws.metadata.name}`;
      const ids = await pods.workspacesOn("default", ws.status.sandboxPod);
      assert.ok(ids.includes(id), `${id} on ${ws.status.sandboxPod}: ${ids.join(", ")}`);
    }
    // The examples' git sources were cloned from the loopback git server, at the ref they name.
    const cloned = workspaces.filter((ws) => ws.spec?.source?.git);
    assert.ok(cloned.length >= 3, "examples with a git source");
    for (const ws of cloned)
      assert.match(ws.status.sourceCommit ?? "", /^[0-9a-f]{40}$/, `${ws.metadata.name} records its commit`);
    // With SeaweedFS built, the default object store backs every workspace: each is flushed.
    if (platform.s3)
      await waitFor("every workspace Durable", () =>
        get(["get", "workspaces", "-n", "default"]).items.every(
          (ws) => ws.status.conditions?.find((c) => c.type === "Durable")?.status === "True",
        ),
      );

    // Every agent pod is backed by a process on loopback; the one with storage works in its
    // volume's directory (a hostPath PersistentVolume made by the local provisioner).
    const agentPods = get(["get", "pods", "-n", "default", "-l", "agentry.dev/agent-runtime"]).items;
    assert.equal(agentPods.length, 3);
    for (const pod of agentPods)
      assert.match(pods.addressOf("default", pod.metadata.name) ?? "", /^127\.0\.0\.1:\d+$/);
    const claims = get(["get", "pvc", "-n", "default"]).items;
    assert.equal(claims.length, 1);
    assert.equal(claims[0]!.status.phase, "Bound");
    const pv = get(["get", "pv"]).items.find((v) => v.metadata.name === claims[0]!.spec.volumeName)!;
    const volumeDir = pv.spec.hostPath!.path;
    assert.ok((await stat(volumeDir)).isDirectory());
    const reviewer = agentPods.find((p) => p.metadata.labels?.["agentry.dev/agent-runtime"] === "reviewer")!;
    const pid = pods.pidOf("default", reviewer.metadata.name);
    assert.ok(pid, "the reviewer's process runs");
    assert.equal(await readlink(`/proc/${pid}/cwd`), volumeDir);

    // Nothing but loopback in the map the operator dials through.
    for (const address of pods.addresses()) assert.match(address, /^127\.0\.0\.1:\d+$/);

    // The gateway process is the data plane too: through the pod address map, with its own
    // signing key, which the operator put into the namespace's trust bundle.
    const gw = (method: string, path: string, body?: unknown) =>
      fetch(`${platform.gatewayUrl}/v1/namespaces/default${path}`, {
        method,
        headers: { authorization: `Bearer ${platform.token}`, "content-type": "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    const ran = await waitFor("a command in alice-notebook through the gateway", async () => {
      const r = await gw("POST", "/workspaces/alice-notebook/exec", {
        command: ["sh", "-c", "echo hi; exit 3"],
      });
      return r.status === 200 ? ((await r.json()) as { exitCode: number; stdout: string }) : undefined;
    });
    assert.deepEqual([ran.exitCode, ran.stdout], [3, "hi\n"]);
    // The agent trusts the gateway's key once its pod's trust directory catches up with the
    // bundle (as a kubelet refreshes a ConfigMap volume): until then it refuses the token.
    await waitFor("a task answered by research-agent through the gateway", async () => {
      const r = await gw("POST", "/agentruntimes/research-agent/tasks", { input: "hello" });
      if (r.status === 200) return true;
      throw new Error(`${r.status}: ${await r.text()}`);
    });

    // Stopping ends every process it started.
    await platform.stop();
    assert.throws(() => process.kill(pid, 0), "the runtime process is gone");
  });
});
