// A durable workspace's life on its own, on the real control plane with a real S3 server, the
// real operator and the gateway's data plane: after spec.idleTimeout without data-plane
// activity it is flushed (status bytes and lastFlushTime from that flush) and taken off its
// sandbox (phase Suspended, reason IdleSuspended); a data-plane call through the gateway
// wakes it and is answered with the files it had (or, past the gateway's wake bound, 503 with
// Retry-After while it wakes), and a task to an agent working in it wakes it too, as does a
// call on the sandbox's own API at the workspace's old address (placed back there); past its TTL it is deleted with an Expired Event, its stored
// objects with it unless retained.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import * as k8s from "@kubernetes/client-node";
import { ANNOTATION_IDLE_SUSPENDED } from "../../api/v1alpha1/index.ts";
import { workspaceIdOf } from "../../contracts/sandbox.ts";
import { Audience } from "../../contracts/tokens.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { api, createCR, waitFor } from "../harness/cluster.ts";
import type { S3Server } from "../harness/s3.ts";
import { answering, startDataPlane, type DataPlane } from "../gateway/dataplane-env.ts";
import { ADMIN_TOKEN, startGateway, type Gateway } from "../gateway/harness.ts";
import { cond, s3Missing, startStore, type Ws } from "./env.ts";

const missing = s3Missing();

const BUCKET = "agentry-lifecycle";
const cleanups: (() => Promise<void> | void)[] = [];
const suite = { name: "lifecycle", after: (fn: () => Promise<void>) => void cleanups.push(fn) };
let s3: S3Server;
let storeAt: (prefix: string) => Record<string, unknown>;
let dp: DataPlane;
let ns: string;
let base: string;

const custom = () => api(k8s.CustomObjectsApi);
const ref = (name: string) => ({
  group: "agentry.dev",
  version: "v1alpha1",
  plural: "workspaces",
  namespace: ns,
  name,
});
const getWs = async (name: string) => (await custom().getNamespacedCustomObject(ref(name))) as Ws;
const exists = (name: string) =>
  getWs(name).then(
    () => true,
    (err: unknown) => {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    },
  );
const patchSpec = (name: string, spec: Record<string, unknown>) =>
  custom().patchNamespacedCustomObject(
    { ...ref(name), body: { spec } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
const ready = (w: Ws) => cond(w, "Ready");

/** The file's URL through the gateway. */
const content = (gw: Gateway, ws: string, path: string) =>
  `${gw.url}${base}/workspaces/${ws}/files/content?path=${encodeURIComponent(path)}`;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function write(ws: string, path: string, text: string): Promise<void> {
  const res = await fetch(content(dp.gw, ws, path), {
    method: "PUT",
    headers: { ...auth, "content-type": "text/plain" },
    body: text,
  });
  assert.ok(res.status === 201 || res.status === 204, `${res.status} ${await res.text()}`);
}

/** A workspace with an idleTimeout, answering through the gateway, with one file written. */
async function sleepy(name: string, idleTimeout: string, path: string, text: string, fleet = "fleet") {
  await createCR(ns, "Workspace", name, { fleetRef: { name: fleet }, idleTimeout });
  await answering(dp.gw, ns, `workspace ${name}`, `workspaces/${name}/files`);
  await write(name, path, text);
}

/** The keys of the workspace's objects in the store. */
async function storedKeys(ws: string): Promise<string[]> {
  const out = await s3.client().send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (out.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes(`${ns}.${ws}/`));
}

/** Waits until the workspace is suspended for idleness: annotated, phase Suspended, off its sandbox. */
const idleSuspended = (name: string) =>
  waitFor(
    `workspace ${name} suspended for idleness`,
    async () => {
      const w = await getWs(name);
      return w.metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED] &&
        w.status?.phase === "Suspended" &&
        ready(w)?.reason === "IdleSuspended" &&
        !w.status.sandboxPod
        ? w
        : undefined;
    },
    { timeoutMs: 120_000 },
  );

describe("a durable workspace's own life", { skip: missing }, () => {
  before(async () => {
    dp = await startDataPlane(suite, { wakeWaitMs: 120_000 });
    ns = dp.ns;
    base = `/v1/namespaces/${ns}`;
    const started = await startStore(suite, ns, BUCKET);
    s3 = started.s3;
    storeAt = started.store;
    await createCR(ns, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
      maxReplicas: 4,
      warmEmpty: 1,
      samplingInterval: "300ms",
      cooldown: "0s",
      objectStore: started.store("life"),
    });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it(
    "is suspended after idleTimeout and woken by a data-plane call, with its files",
    { timeout: 300_000 },
    async () => {
      const text = "kept while it sleeps\n";
      await sleepy("dozy", "3s", "notes.txt", text);

      const asleep = await idleSuspended("dozy");
      assert.ok(
        (asleep.status?.bytes ?? 0) >= text.length,
        `the suspend's flush in status: ${asleep.status?.bytes}`,
      );
      assert.ok(asleep.status?.lastFlushTime);
      assert.match(ready(asleep)?.message ?? "", /idleTimeout \(3s\)/);
      const events = await api(k8s.CoreV1Api).listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=dozy,reason=IdleSuspended",
      });
      assert.equal(events.items.length >= 1, true, "an IdleSuspended Event");

      // The call wakes it: placed again, restored, and answered with what it had.
      const res = await fetch(content(dp.gw, "dozy", "notes.txt"), { headers: auth });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(await res.text(), text);
      const awake = await getWs("dozy");
      assert.equal(awake.metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED], undefined);
      assert.equal(awake.status?.phase, "Ready");

      // Quiet again: it goes back to sleep.
      await idleSuspended("dozy");
    },
  );

  it(
    "past the gateway's wake bound: 503 with Retry-After, and the workspace wakes",
    { timeout: 300_000 },
    async () => {
      const impatient = await startGateway(suite, {
        dataPlane: {
          addresses: new PodAddresses(dp.pods.mapFile),
          signer: () => dp.ring.signer(),
          wakeWaitMs: 0,
        },
      });
      await createCR(ns, "Workspace", "sleepy", { fleetRef: { name: "fleet" }, idleTimeout: "2s" });
      await answering(dp.gw, ns, "the workspace", "workspaces/sleepy/files");
      await idleSuspended("sleepy");

      const res = await impatient.call("GET", `${base}/workspaces/sleepy/files`);
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
      assert.ok(Number(res.headers.get("retry-after")) > 0);
      assert.match(String(res.body.detail), /suspended for idleness and is waking up/);
      // The refused call still woke it.
      await answering(impatient, ns, "the woken workspace", "workspaces/sleepy/files");
    },
  );

  it(
    "an agent waiting for its idle workspace: a task through the gateway wakes both",
    { timeout: 300_000 },
    async () => {
      await createCR(ns, "Workspace", "desk", { fleetRef: { name: "fleet" }, idleTimeout: "4s" });
      await createCR(ns, "AgentRuntime", "clerk", {
        image: "registry.example/agent:1",
        workspaceRef: { name: "desk" },
      });
      await idleSuspended("desk");
      // Its workspace asleep, the agent has no Pod and says why.
      const agent = () =>
        custom().getNamespacedCustomObject({ ...ref("clerk"), plural: "agentruntimes" }) as Promise<{
          status?: { phase?: string; readinessReason?: string; podName?: string };
        }>;
      const waiting = await waitFor(
        "the agent waiting for its workspace",
        async () => {
          const a = await agent();
          return a.status?.phase === "Pending" && !a.status.podName ? a : undefined;
        },
        { timeoutMs: 60_000 },
      );
      assert.match(waiting.status?.readinessReason ?? "", /suspended for idleness/);

      const res = await dp.gw.call("POST", `${base}/agentruntimes/clerk/tasks`, {
        body: { input: "wake up" },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.match(String(res.body.output), /wake up/);
      assert.equal((await getWs("desk")).metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED], undefined);
      assert.equal((await agent()).status?.phase, "Ready");
    },
  );

  it(
    "a call on the sandbox's own API, at the address the workspace had, wakes it there",
    { timeout: 300_000 },
    async () => {
      await sleepy("nap", "2s", "kept.txt", "still here\n");
      const home = (await getWs("nap")).status!.sandboxPod!;
      const address = dp.pods.addressOf(ns, home)!;
      await idleSuspended("nap");

      // What a program holding the workspace's token and its old endpoint does.
      const id = workspaceIdOf(ns, "nap");
      const token = await dp.pods.token(Audience.workspace(id), ["files"]);
      const res = await fetch(`http://${address}/workspaces/${id}/files/kept.txt`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(await res.text(), "still here\n");
      const awake = await getWs("nap");
      assert.equal(awake.metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED], undefined);
      assert.equal(awake.status?.sandboxPod, home, "placed back on the sandbox that was asked");
      const events = await api(k8s.CoreV1Api).listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=nap,reason=Woken",
      });
      assert.match(events.items[0]?.message ?? "", new RegExp(`sandbox ${home}`));
    },
  );

  it(
    "a sleeping workspace's slot is free: its fleet scales in to zero, and out again to wake it",
    { timeout: 300_000 },
    async () => {
      await createCR(ns, "SandboxFleet", "solo", {
        template: { image: "registry.example/sandbox:1" },
        minReplicas: 0,
        maxReplicas: 2,
        warmEmpty: 0,
        samplingInterval: "300ms",
        cooldown: "0s",
        idleTTL: "1s",
        objectStore: storeAt("solo"),
      });
      const fleet = () =>
        custom().getNamespacedCustomObject({ ...ref("solo"), plural: "sandboxfleets" }) as Promise<{
          status?: { replicas?: number; desiredReplicas?: number; workspaces?: number };
        }>;
      await sleepy("lone", "3s", "a.txt", "a\n", "solo");
      await idleSuspended("lone");
      await waitFor(
        "the fleet scaled in to zero under the sleeping workspace",
        async () => {
          const st = (await fleet()).status;
          return st?.replicas === 0 && st.desiredReplicas === 0;
        },
        { timeoutMs: 120_000 },
      );
      const res = await fetch(content(dp.gw, "lone", "a.txt"), { headers: auth });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(await res.text(), "a\n");
      assert.equal((await fleet()).status?.desiredReplicas, 1);
    },
  );

  it("a workspace suspended by its spec is not woken by a call (409)", async () => {
    await createCR(ns, "Workspace", "held", {
      fleetRef: { name: "fleet" },
      suspended: true,
      idleTimeout: "1s",
    });
    const res = await dp.gw.call("GET", `${base}/workspaces/held/files`);
    assert.equal(res.status, 409);
    assert.match(String(res.body.detail), /spec.suspended: true/);
    assert.equal((await getWs("held")).metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED], undefined);
  });

  it(
    "past its TTL it is deleted with an Expired Event, its objects too unless retained",
    { timeout: 300_000 },
    async () => {
      for (const name of ["brief", "kept"]) {
        await createCR(ns, "Workspace", name, { fleetRef: { name: "fleet" }, retain: name === "kept" });
        await answering(dp.gw, ns, `workspace ${name}`, `workspaces/${name}/files`);
        await write(name, "data.txt", `${name}\n`);
        await waitFor(
          `workspace ${name} flushed`,
          async () => ((await getWs(name)).status?.bytes ?? 0) >= name.length + 1,
          { timeoutMs: 60_000 },
        );
        assert.ok((await storedKeys(name)).length > 0, "objects in the store");
        // Its creation is already more than a second ago: expired at once.
        await patchSpec(name, { ttlSecondsAfterCreation: 1 });
      }
      for (const name of ["brief", "kept"])
        await waitFor(`workspace ${name} deleted`, async () => !(await exists(name)), { timeoutMs: 120_000 });
      const events = await api(k8s.CoreV1Api).listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=brief,reason=Expired",
      });
      assert.match(events.items[0]?.message ?? "", /spec.ttlSecondsAfterCreation 1.*and its stored files/);
      assert.deepEqual(await storedKeys("brief"), [], "the expired workspace's objects are removed");
      assert.ok((await storedKeys("kept")).length > 0, "a retained workspace's objects stay");
    },
  );
});
