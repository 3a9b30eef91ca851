// A durable workspace's files survive what moves it or interrupts its flush, on the real
// control plane with a real S3 server: `kubectl scale` of the fleet's Deployment removing its
// sandbox, a lowered maxReplicas draining its sandbox, a rollout of the fleet's pod template,
// and the operator killed with SIGKILL while the suspend's flush is under way. Every fleet
// here flushes only when made to (an hour's quiet), so what survives was written just before.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, createCR, kubectl, waitFor } from "../harness/cluster.ts";
import { cond, s3Missing, startDurableEnv, type DurableEnv } from "./env.ts";

const missing = s3Missing();
const cleanups: (() => Promise<void> | void)[] = [];
const suite = { name: "moves", after: (fn: () => Promise<void>) => void cleanups.push(fn) };
let env: DurableEnv;

const LAZY = [{ name: "AGENTRY_SANDBOX_FLUSH_QUIET", value: "1h" }];

/** A fleet that never flushes on its own, its sandboxes sampled often and scaled at once. */
const fleet = (name: string, spec: Record<string, unknown>) =>
  createCR(env.ns, "SandboxFleet", name, {
    template: { image: "registry.example/sandbox:1", env: LAZY },
    warmEmpty: 0,
    samplingInterval: "300ms",
    cooldown: "0s",
    objectStore: env.store("moves"),
    ...spec,
  });

/** Places workspace `name` and writes `text` to notes.txt there, not yet flushed. */
async function placeAndWrite(name: string, fleetName: string, text: string, ownerId?: string) {
  await createCR(env.ns, "Workspace", name, {
    fleetRef: { name: fleetName },
    ...(ownerId ? { ownerId } : {}),
  });
  await env.readyOn(name);
  const sb = await env.sandboxOf(name);
  await sb.client.writeFile(sb.id, "notes.txt", text);
  return sb;
}

/** Waits until the workspace is Ready on a sandbox other than `not`, and reads notes.txt there. */
async function notesAfterMove(name: string, not: string): Promise<string> {
  await env.readyOn(name, not);
  const sb = await env.sandboxOf(name);
  return sb.client.readTextFile(sb.id, "notes.txt");
}

const livePods = async (fleetName: string) =>
  (
    await api(k8s.CoreV1Api).listNamespacedPod({
      namespace: env.ns,
      labelSelector: `agentry.dev/sandbox-fleet=${fleetName}`,
    })
  ).items
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => p.metadata!.name!);

describe("durable workspaces moved or interrupted", { skip: missing }, () => {
  before(async () => {
    env = await startDurableEnv(suite, "agentry-moves");
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("survive `kubectl scale` of the fleet's Deployment to zero", { timeout: 300_000 }, async () => {
    await fleet("scaled", { minReplicas: 1, maxReplicas: 2 });
    const first = await placeAndWrite("scaled", "scaled", "before the scale\n");
    const scale = await kubectl(["-n", env.ns, "scale", "deployment/scaled-sandbox", "--replicas=0"]);
    assert.equal(scale.code, 0, scale.stderr);
    // The pod goes (flushing on SIGTERM); the operator sizes the Deployment again.
    assert.equal(await notesAfterMove("scaled", first.pod), "before the scale\n");
  });

  it("survive a lowered maxReplicas draining their sandbox", { timeout: 300_000 }, async () => {
    await fleet("shrink", { minReplicas: 1, maxReplicas: 3 });
    // Two owners: two sandboxes, one of which has to go when only one may stay.
    const a = await placeAndWrite("owner-a", "shrink", "a's notes\n", "a");
    const b = await placeAndWrite("owner-b", "shrink", "b's notes\n", "b");
    assert.notEqual(a.pod, b.pod);
    await env.patchSpec("sandboxfleets", "shrink", { maxReplicas: 1 });
    const [kept] = await waitFor(
      "one sandbox left",
      async () => {
        const pods = await livePods("shrink");
        return pods.length === 1 ? pods : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const drained = kept === a.pod ? "owner-b" : "owner-a";
    const w = await waitFor("the drained workspace to wait for room", async () => {
      const w = await env.getWs(drained);
      return w.status?.phase === "Pending" ? w : undefined;
    });
    assert.deepEqual(
      [cond(w, "Durable")?.status, cond(w, "Durable")?.reason],
      ["True", "Flushed"],
      "flushed before its sandbox went, nothing lost",
    );
    // Room again: placed on a new sandbox and restored.
    await env.patchSpec("sandboxfleets", "shrink", { maxReplicas: 3 });
    assert.equal(await notesAfterMove("owner-a", drained === "owner-a" ? a.pod : ""), "a's notes\n");
    assert.equal(await notesAfterMove("owner-b", drained === "owner-b" ? b.pod : ""), "b's notes\n");
  });

  it("survive a rollout of the fleet's pod template", { timeout: 300_000 }, async () => {
    await fleet("rolled", { minReplicas: 1, maxReplicas: 2 });
    const first = await placeAndWrite("rolled", "rolled", "before the rollout\n");
    await env.patchSpec("sandboxfleets", "rolled", {
      template: { image: "registry.example/sandbox:1", env: [...LAZY, { name: "ROLLOUT", value: "2" }] },
    });
    assert.equal(await notesAfterMove("rolled", first.pod), "before the rollout\n");
  });

  it(
    "survive the operator killed with SIGKILL while the suspend's flush is under way",
    { timeout: 300_000 },
    async () => {
      await fleet("killed", { minReplicas: 1, maxReplicas: 2 });
      const text = "flushed across an operator kill\n";
      const sb = await placeAndWrite("killed", "killed", text);
      // The store hangs, so the flush the suspend starts cannot finish before the kill.
      env.s3.pause();
      try {
        await env.patchSpec("workspaces", "killed", { suspended: true });
        await waitFor("the suspend's flush to start", async () => {
          const d = (await sb.client.getWorkspace(sb.id))?.durability;
          return d?.dirty === false;
        });
        await env.restartOperator("SIGKILL");
      } finally {
        env.s3.resume();
      }
      const suspended = await waitFor(
        "workspace killed Suspended after the new operator finished the suspend",
        async () => {
          const w = await env.getWs("killed");
          return w.status?.phase === "Suspended" ? w : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.ok((suspended.status?.bytes ?? 0) >= text.length, JSON.stringify(suspended.status));
      assert.equal(cond(suspended, "Durable")?.status, "True");
      await env.patchSpec("workspaces", "killed", { suspended: false });
      assert.equal(await notesAfterMove("killed", ""), text);
    },
  );
});
