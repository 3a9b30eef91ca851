// The sandbox and agent images, run as real containers the way the Pods the operator makes
// run them: the operator (a process) turns a SandboxFleet and an AgentRuntime into Pods on
// the test cluster, and each Pod's container (user, read-only root, capabilities, no new
// privileges, env, volumes, limits) is run with podman on loopback (`--network host`, a free
// 127.0.0.1 port instead of the Pod's 0.0.0.0:8080). Both serve /metrics on a metrics port
// of their own (the API port answers 404); the sandbox also reports its load on /status, the
// agent its state on /v1/info.
// The Pod's trust volume is a directory with a key of the test's, which signs the calls.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, testNamespace } from "../harness/cluster.ts";
import { containersOr, imageId, podRunOptions } from "../harness/containers.ts";
import { startOperator } from "../harness/operator.ts";
import { freePort } from "../harness/process.ts";
import { assertCleanStop, json, runningPod, start, tempDir, writesOutsideVolumes } from "./lib.ts";
import { LIMITS, sandboxApi, sandboxPodOptions, trustVolume } from "./sandbox.ts";

const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);

describe("the sandbox image", () => {
  it("runs as a fleet's sandbox Pod: ready, serves files and exec confined to its volumes, stops cleanly on SIGTERM", async (t) => {
    if (!containersOr(t)) return;
    const { pod, options, trust, base, metricsUrl, volumes } = await sandboxPodOptions(t);
    const auth = await trust.bearer(`pod:${pod.metadata!.namespace!}/${pod.metadata!.name!}`);
    // What the Pod asks for, and so what the container gets.
    assert.equal(options.user, "65532:65532");
    assert.deepEqual([options.readOnly, options.noNewPrivileges, options.capDrop], [true, true, ["ALL"]]);
    assert.deepEqual(options.mounts?.map((m) => m.target).sort(), [
      "/tmp",
      "/var/run/agentry/trust",
      "/workspaces",
    ]);

    const c = await start(t, options);
    await c.waitHttpOk(`${base}/healthz`);
    await c.waitHttpOk(`${base}/readyz`);
    assert.equal((await fetch(`${base}/status`)).status, 401, "nothing but the probes without a token");
    const status = (await (await fetch(`${base}/status`, { headers: auth })).json()) as Record<
      string,
      unknown
    >;
    assert.equal(status.maxWorkspaces, 32);
    assert.equal(status.draining, false);
    assert.equal((await fetch(`${base}/metrics`, { headers: auth })).status, 404, "not on the API port");
    assert.match(await (await fetch(metricsUrl)).text(), /^agentry_sandbox_workspaces 0$/m);

    const sb = sandboxApi(base, auth);
    assert.equal((await sb.call("PUT", "/workspaces/ws1", "{}")).status, 201);
    assert.equal((await sb.call("PUT", "/workspaces/ws1/files/notes/a.txt", "hello")).status, 201);
    assert.equal(await (await sb.call("GET", "/workspaces/ws1/files/notes/a.txt")).text(), "hello");
    // The workspace lives on the volume, not in the container's filesystem.
    assert.equal(readFileSync(join(volumes, "workspaces", "ws1", "notes", "a.txt"), "utf8"), "hello");

    // Commands run as the Pod's user, with the clean environment, in the workspace.
    const id = await sb.exec("ws1", ["id", "-u"]);
    assert.deepEqual([id.exitCode, id.stdout.trim()], [0, "65532"]);
    const env = await sb.exec("ws1", ["env"]);
    assert.deepEqual(
      env.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("=")[0])
        .sort(),
      ["HOME", "LANG", "PATH"],
    );
    const pwd = await sb.exec("ws1", ["pwd"]);
    assert.equal(pwd.stdout.trim(), "/workspaces/ws1");
    // The tools the image ships, and a read-only root outside the volumes.
    const git = await sb.exec("ws1", ["git", "init", "-q", "."]);
    assert.equal(git.exitCode, 0, git.stderr);
    assert.ok(existsSync(join(volumes, "workspaces", "ws1", ".git")));
    for (const path of ["/app/x", "/etc/x", "/usr/local/bin/x", "/workspaces-x"]) {
      const touch = await sb.exec("ws1", ["touch", path]);
      assert.notEqual(touch.exitCode, 0, `touch ${path} must fail`);
      assert.match(touch.stderr, /Read-only file system|Permission denied/);
    }
    const tmp = await sb.exec("ws1", ["touch", "/tmp/scratch"]);
    assert.equal(tmp.exitCode, 0, "/tmp is the Pod's emptyDir");
    // The whole process group goes at the timeout, a background child included.
    const slow = await sb.exec("ws1", ["sh", "-c", "sleep 30 & sleep 30"], 1);
    assert.deepEqual([slow.timedOut, slow.signal], [true, "SIGKILL"]);

    // SIGTERM with a command running: it finishes, then the runtime exits 0 within the grace.
    const inFlight = sb.exec("ws1", ["sh", "-c", "sleep 2; echo done"]);
    await new Promise((r) => setTimeout(r, 300));
    await assertCleanStop(c, pod.spec?.terminationGracePeriodSeconds ?? 30);
    const finished = await inFlight;
    assert.deepEqual([finished.exitCode, finished.stdout], [0, "done\n"]);

    const changed = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitHttpOk(`${base}/readyz`);
      assert.equal((await sb.call("PUT", "/workspaces/ws2", "{}")).status, 201);
      assert.equal((await sb.call("PUT", "/workspaces/ws2/files/b.txt", "x")).status, 201);
      assert.equal((await sb.exec("ws2", ["git", "init", "-q", "."])).exitCode, 0);
    });
    assert.deepEqual(changed, [], "the sandbox writes nowhere but /workspaces and /tmp");
    // The check sees a write outside the volumes (here a command's, into world-writable /var/tmp).
    const seen = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitHttpOk(`${base}/readyz`);
      assert.equal((await sb.call("PUT", "/workspaces/ws3", "{}")).status, 201);
      assert.equal((await sb.exec("ws3", ["touch", "/var/tmp/stray"])).exitCode, 0);
    });
    assert.ok(seen.includes("A /var/tmp/stray"), seen.join(", "));
  });
});

describe("the agent image", () => {
  it("runs as an AgentRuntime's Pod: ready, answers tasks, finishes a running task on SIGTERM", async (t) => {
    if (!containersOr(t)) return;
    const namespace = await testNamespace(t);
    await startOperator(t, { namespaces: [namespace], leaderElect: false });
    await custom().createNamespacedCustomObject({
      ...group("agentruntimes"),
      namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "agent" },
        spec: {
          image: "localhost/agentry/agent:test",
          model: { provider: "echo", model: "echo-1" },
          env: [{ name: "AGENTRY_ECHO_DELAY", value: "1500ms" }],
          resources: LIMITS,
        },
      },
    });
    const pod = await runningPod(namespace, "agentry.dev/agent-runtime=agent");
    const port = await freePort();
    const metricsPort = await freePort();
    const trust = await trustVolume(t);
    const options = await podRunOptions(pod, {
      image: imageId("agent"),
      volumesDir: await tempDir(t, "agent-volumes"),
      volumeSources: { "agentry-trust": trust.dir },
      env: {
        AGENTRY_HOST: "127.0.0.1",
        AGENTRY_PORT: String(port),
        AGENTRY_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      },
    });
    const auth = await trust.bearer(`agent:${namespace}/agent`);
    assert.equal(options.user, "65532:65532");
    assert.deepEqual([options.readOnly, options.noNewPrivileges, options.capDrop], [true, true, ["ALL"]]);
    assert.equal(options.env?.AGENTRY_MODEL_PROVIDER, "echo");

    const c = await start(t, options);
    const base = `http://127.0.0.1:${port}`;
    await c.waitHttpOk(`${base}/healthz`);
    const ready = await json(await c.waitHttpOk(`${base}/readyz`));
    assert.deepEqual(ready.body, { status: "ready" });
    assert.equal((await fetch(`${base}/v1/info`)).status, 401, "nothing but the probes without a token");
    const info = (await (await fetch(`${base}/v1/info`, { headers: auth })).json()) as Record<
      string,
      unknown
    >;
    assert.deepEqual([info.name, info.namespace, info.provider], ["agent", namespace, "echo"]);
    assert.equal((await fetch(`${base}/metrics`, { headers: auth })).status, 404, "not on the API port");
    assert.match(
      await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
      /^agentry_agent_tasks_running 0$/m,
    );

    const task = (input: string) =>
      fetch(`${base}/v1/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ input }),
      }).then(json);
    const done = await task("hello from a container");
    assert.equal(done.status, 200);
    assert.equal((done.body as { output: string }).output, "hello from a container");

    // SIGTERM with a task running: it completes, then the agent exits 0 within the grace.
    const inFlight = task("in flight");
    await new Promise((r) => setTimeout(r, 300));
    await assertCleanStop(c, pod.spec?.terminationGracePeriodSeconds ?? 30);
    const finished = await inFlight;
    assert.equal(finished.status, 200, JSON.stringify(finished.body));
    assert.equal((finished.body as { output: string }).output, "in flight");

    const changed = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitHttpOk(`${base}/readyz`);
      assert.equal((await task("x")).status, 200);
    });
    assert.deepEqual(changed, [], "the agent writes nowhere but /tmp");
  });
});
