// Durable workspaces on the real control plane, with a real S3 server and a real git server:
// a fleet with an object store, a Workspace cloned from git at a ref (commit pinned in
// status), files written through the sandbox API flushed (lastFlushTime, Durable=True), and
// the files back after the workspace's sandbox pod is deleted and it is placed again; a
// write not yet flushed survives the pod's deletion (the SIGTERM flush, while the pod
// terminates gracefully); after a SIGKILL (node loss) the files of the last completed flush
// come back and later writes do not; suspend flushes and frees the slot, resume retakes one
// and restores; a failing git URL gives a clear condition.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, createCR, waitFor } from "../harness/cluster.ts";
import { startGitServer, type GitServer } from "../harness/git.ts";
import { cond, s3Missing, startDurableEnv, type DurableEnv } from "./env.ts";

const missing = s3Missing();
const cleanups: (() => Promise<void> | void)[] = [];
const suite = { name: "durable", after: (fn: () => Promise<void>) => void cleanups.push(fn) };
let env: DurableEnv;
let ns: string;
let git: GitServer;
let commits: string[];

const getWs = (name: string) => env.getWs(name);
const readyOn = (name: string, not?: string) => env.readyOn(name, not);
const sandboxOf = (name: string) => env.sandboxOf(name);

describe("durable workspaces on the cluster", { skip: missing }, () => {
  before(async () => {
    env = await startDurableEnv(suite, "agentry-cluster");
    ns = env.ns;
    git = await startGitServer();
    commits = await git.createRepo("app", [
      { files: { "README.md": "v1\n" }, tag: "v1" },
      { files: { "README.md": "v2\n" } },
    ]);
    await createCR(ns, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 2,
      maxReplicas: 4,
      warmEmpty: 1,
      samplingInterval: "300ms",
      cooldown: "0s",
      objectStore: env.store("cluster"),
    });
    // Writes here are never flushed on their own (an hour's quiet): only a drain, a delete
    // or the SIGTERM of a terminating pod flushes them.
    await createCR(ns, "SandboxFleet", "lazy", {
      template: {
        image: "registry.example/sandbox:1",
        env: [{ name: "AGENTRY_SANDBOX_FLUSH_QUIET", value: "1h" }],
      },
      minReplicas: 1,
      maxReplicas: 3,
      warmEmpty: 1,
      samplingInterval: "300ms",
      cooldown: "0s",
      objectStore: env.store("cluster"),
    });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await git?.stop();
  });

  it(
    "clones at the ref, flushes writes, and restores them after its sandbox is deleted",
    { timeout: 300_000 },
    async () => {
      await createCR(ns, "Workspace", "app", {
        fleetRef: { name: "fleet" },
        source: { git: { url: `${git.url}/app.git`, ref: "v1" } },
      });
      const ready = await waitFor(
        "workspace app Ready and Durable",
        async () => {
          const w = await getWs("app");
          return w.status?.phase === "Ready" && cond(w, "Durable")?.status === "True" ? w : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.equal(ready.status?.sourceCommit, commits[0]);
      assert.ok(ready.status?.lastFlushTime);
      const id = `${ns}.app`;
      const first = await sandboxOf("app");
      assert.equal(await first.client.readTextFile(id, "README.md"), "v1\n");
      await first.client.writeFile(id, "notes/todo.txt", "written before the drain\n");
      await waitFor(
        "the write flushed",
        async () => {
          const w = await getWs("app");
          return (
            w.status?.lastFlushTime !== ready.status?.lastFlushTime && cond(w, "Durable")?.status === "True"
          );
        },
        { timeoutMs: 60_000 },
      );

      // The sandbox goes (node loss, eviction): the workspace is placed again and restored.
      await api(k8s.CoreV1Api).deleteNamespacedPod({ namespace: ns, name: first.pod });
      const moved = await waitFor(
        "workspace app Ready on another sandbox",
        async () => {
          const w = await getWs("app");
          return w.status?.phase === "Ready" && w.status.sandboxPod && w.status.sandboxPod !== first.pod
            ? w
            : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.equal(moved.status?.sourceCommit, commits[0], "the pinned commit stays");
      const second = await sandboxOf("app");
      assert.equal(await second.client.readTextFile(id, "notes/todo.txt"), "written before the drain\n");
      assert.equal(
        await second.client.readTextFile(id, "README.md"),
        "v1\n",
        "restored from the store, not cloned at HEAD",
      );
    },
  );

  it(
    "a write not yet flushed survives its pod's deletion (flushed on SIGTERM)",
    { timeout: 300_000 },
    async () => {
      await createCR(ns, "Workspace", "lazy", { fleetRef: { name: "lazy" } });
      const placed = await readyOn("lazy");
      const id = `${ns}.lazy`;
      const first = await sandboxOf("lazy");
      await first.client.writeFile(id, "draft.txt", "not flushed when the pod was deleted\n");
      const before = (await getWs("lazy")).status?.lastFlushTime;
      assert.equal(before, placed.status?.lastFlushTime, "no flush before the deletion");

      await api(k8s.CoreV1Api).deleteNamespacedPod({ namespace: ns, name: first.pod });
      await readyOn("lazy", first.pod);
      const second = await sandboxOf("lazy");
      assert.equal(
        await second.client.readTextFile(id, "draft.txt"),
        "not flushed when the pod was deleted\n",
      );
      const after = await getWs("lazy");
      // The SIGTERM flush is the one recorded: it holds the draft (lastFlushTime has whole
      // seconds, and a re-placement can now land within the second of the first flush).
      const draft = Buffer.byteLength("not flushed when the pod was deleted\n");
      assert.ok(
        (after.status?.bytes ?? 0) >= (placed.status?.bytes ?? 0) + draft,
        `the recorded flush holds the draft: ${JSON.stringify([placed.status?.bytes, after.status?.bytes])}`,
      );
    },
  );

  it("after a SIGKILL, the files of the last completed flush come back", { timeout: 300_000 }, async () => {
    await createCR(ns, "Workspace", "crash", { fleetRef: { name: "fleet" } });
    await readyOn("crash");
    const id = `${ns}.crash`;
    const first = await sandboxOf("crash");
    await first.client.writeFile(id, "kept.txt", "flushed\n");
    await env.flushedBytes("crash", "flushed\n".length);
    // Written, then the process dies before the next flush (5 s of quiet) could run.
    await first.client.writeFile(id, "lost.txt", "never flushed\n");
    await env.pods.crash(ns, first.pod);
    await api(k8s.CoreV1Api).deleteNamespacedPod({ namespace: ns, name: first.pod });

    await readyOn("crash", first.pod);
    const second = await sandboxOf("crash");
    assert.equal(await second.client.readTextFile(id, "kept.txt"), "flushed\n");
    await assert.rejects(second.client.readTextFile(id, "lost.txt"), /404|not found/i);
  });

  it(
    "suspend flushes and frees the slot; resume takes one again and restores",
    { timeout: 300_000 },
    async () => {
      const custom = api(k8s.CustomObjectsApi);
      const fleetWorkspaces = async () =>
        (
          (await custom.getNamespacedCustomObject({
            group: "agentry.dev",
            version: "v1alpha1",
            plural: "sandboxfleets",
            namespace: ns,
            name: "lazy",
          })) as { status?: { workspaces?: number } }
        ).status?.workspaces ?? 0;
      const suspend = (suspended: boolean) => env.patchSpec("workspaces", "pause", { suspended });
      await createCR(ns, "Workspace", "pause", { fleetRef: { name: "lazy" } });
      await readyOn("pause");
      const id = `${ns}.pause`;
      const first = await sandboxOf("pause");
      const taken = await waitFor("the fleet counting the workspace", async () => {
        const n = await fleetWorkspaces();
        return n >= 1 ? n : undefined;
      });
      // The lazy fleet never flushes on its own: only the suspend's flush keeps this.
      await first.client.writeFile(id, "state.txt", "kept across suspend\n");

      await suspend(true);
      const suspended = await waitFor(
        "workspace pause Suspended",
        async () => {
          const w = await getWs("pause");
          return w.status?.phase === "Suspended" ? w : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.equal(cond(suspended, "Durable")?.status, "True", JSON.stringify(suspended.status));
      // The status says what the suspend's flush wrote (the only flush after the write).
      assert.ok(
        (suspended.status?.bytes ?? 0) >= "kept across suspend\n".length,
        JSON.stringify(suspended.status),
      );
      await waitFor("the slot freed", async () => (await fleetWorkspaces()) === taken - 1);
      assert.ok(!(await env.pods.workspacesOn(ns, first.pod)).includes(id), "gone from its sandbox");

      await suspend(false);
      await readyOn("pause");
      await waitFor("the slot taken again", async () => (await fleetWorkspaces()) === taken);
      const again = await sandboxOf("pause");
      assert.equal(await again.client.readTextFile(id, "state.txt"), "kept across suspend\n");
    },
  );

  it("a git URL that fails gives the workspace a clear condition", async () => {
    await createCR(ns, "Workspace", "broken", {
      fleetRef: { name: "fleet" },
      source: { git: { url: `${git.url}/missing.git`, ref: "main" } },
    });
    const w = await waitFor(
      "workspace broken to report the clone failure",
      async () => {
        const w = await getWs("broken");
        return cond(w, "Ready")?.reason === "CloneFailed" ? w : undefined;
      },
      { timeoutMs: 120_000 },
    );
    assert.match(cond(w, "Ready")?.message ?? "", /cloning the git source failed/);
    assert.equal(w.status?.phase, "Placed");
  });
});
