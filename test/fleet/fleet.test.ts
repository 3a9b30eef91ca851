// SandboxFleet scaling and Workspace placement against the real control plane, with a real
// sandbox runtime process standing in for each kwok sandbox pod.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";

const LEASE = ["--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];
const FAST = {
  samplingInterval: "200ms",
  cooldown: "0s",
  scaleUpWindow: 2,
  scaleDownWindow: 2,
  idleTTL: "1s",
};
const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);

type Ws = { metadata: { name: string }; status?: { phase?: string; sandboxPod?: string; endpoint?: string } };
type Fleet = {
  status?: {
    replicas?: number;
    readyReplicas?: number;
    desiredReplicas?: number;
    workspaces?: number;
    capacity?: number;
    lastScaleReason?: string;
  };
};

const names = ["start", "owners", "capacity", "pressure", "scaledown", "pinned", "drain", "restart"] as const;
const ns = {} as Record<(typeof names)[number], string>;
let operator: OperatorProcess;
let sandboxes: PodBackends;
const cleanups: (() => Promise<void> | void)[] = [];
const suite = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };

async function createFleet(namespace: string, spec: Record<string, unknown> = {}): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...group("sandboxfleets"),
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "SandboxFleet",
      metadata: { name: "fleet" },
      spec: {
        template: { image: "registry.example/sandbox:1" },
        minReplicas: 1,
        maxReplicas: 6,
        warmEmpty: 1,
        ...FAST,
        ...spec,
      },
    },
  });
}

async function createWorkspace(namespace: string, name: string, ownerId?: string): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...group("workspaces"),
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name },
      spec: { fleetRef: { name: "fleet" }, ...(ownerId ? { ownerId } : {}) },
    },
  });
}

const getWs = async (namespace: string, name: string) =>
  (await custom().getNamespacedCustomObject({ ...group("workspaces"), namespace, name })) as Ws;
const getFleet = async (namespace: string) =>
  (await custom().getNamespacedCustomObject({
    ...group("sandboxfleets"),
    namespace,
    name: "fleet",
  })) as Fleet;
const readyWs = (namespace: string, name: string) =>
  waitFor(`workspace ${name} Ready`, async () => {
    const w = await getWs(namespace, name);
    return w.status?.phase === "Ready" && w.status.sandboxPod ? w : undefined;
  });
const deploymentReplicas = async (namespace: string) =>
  (await api(k8s.AppsV1Api).readNamespacedDeployment({ namespace, name: "fleet-sandbox" })).spec?.replicas;
const readyPods = async (namespace: string) =>
  (
    await api(k8s.CoreV1Api).listNamespacedPod({
      namespace,
      labelSelector: "agentry.dev/sandbox-fleet=fleet",
    })
  ).items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
const waitPods = (namespace: string, n: number) =>
  waitFor(`${n} ready sandbox pods`, async () =>
    (await readyPods(namespace)).length === n ? true : undefined,
  );

describe("SandboxFleet and Workspace", () => {
  before(async () => {
    for (const n of names) ns[n] = await testNamespace({ ...suite, name: `fleet-${n}` });
    sandboxes = await PodBackends.start({ namespaces: Object.values(ns), kinds: ["sandbox"] });
    operator = await startOperator(suite, {
      namespaces: Object.values(ns),
      podAddressMap: sandboxes.mapFile,
      args: [...LEASE],
    });
  });
  after(async () => {
    await sandboxes?.stop();
    for (const fn of cleanups.reverse()) await fn();
  });

  it("starts at min with its warm sandbox, and reports itself in kubectl get sbf", async () => {
    const namespace = ns.start;
    await createFleet(namespace, { minReplicas: 2 });
    await waitPods(namespace, 2);
    const fleet = await waitFor("fleet status", async () => {
      const f = await getFleet(namespace);
      return f.status?.readyReplicas === 2 ? f : undefined;
    });
    assert.equal(fleet.status?.desiredReplicas, 2);
    assert.equal(fleet.status?.capacity, 64);
    const res = await kubectl(["get", "sbf", "fleet", "-n", namespace, "--no-headers"]);
    assert.match(res.stdout, /^fleet\s+2\s+2\s+2\s+6\s+0\s+64\s/);
  });

  it("grows as workspaces are placed; one owner's workspaces share a sandbox", async () => {
    const namespace = ns.owners;
    await createFleet(namespace);
    await waitPods(namespace, 1);
    await createWorkspace(namespace, "alice-1", "alice");
    const first = await readyWs(namespace, "alice-1");
    await waitPods(namespace, 2); // one in use + one warm
    await createWorkspace(namespace, "alice-2", "alice");
    await createWorkspace(namespace, "bob-1", "bob");
    const second = await readyWs(namespace, "alice-2");
    const bob = await readyWs(namespace, "bob-1");
    assert.equal(second.status?.sandboxPod, first.status?.sandboxPod, "same owner, same sandbox");
    assert.notEqual(bob.status?.sandboxPod, first.status?.sandboxPod, "owners do not share");
    await waitPods(namespace, 3);
    const onSandbox = await sandboxes.workspacesOn(namespace, first.status!.sandboxPod!);
    assert.deepEqual(onSandbox.sort(), [`${namespace}.alice-1`, `${namespace}.alice-2`]);
    assert.match(first.status?.endpoint ?? "", new RegExp(`/workspaces/${namespace}\\.alice-1$`));
  });

  it("never puts more than maxWorkspacesPerSandbox on a sandbox; deleting a workspace frees room", async () => {
    const namespace = ns.capacity;
    await createFleet(namespace, { maxWorkspacesPerSandbox: 2, warmEmpty: 1 });
    await waitPods(namespace, 1);
    for (const n of ["a", "b", "c"]) await createWorkspace(namespace, n);
    const placed = await Promise.all(["a", "b", "c"].map((n) => readyWs(namespace, n)));
    const counts = new Map<string, number>();
    for (const w of placed) counts.set(w.status!.sandboxPod!, (counts.get(w.status!.sandboxPod!) ?? 0) + 1);
    assert.deepEqual([...counts.values()].sort(), [1, 2]);
    const full = [...counts].find(([, n]) => n === 2)![0];
    const victim = placed.find((w) => w.status?.sandboxPod === full)!;
    await custom().deleteNamespacedCustomObject({
      ...group("workspaces"),
      namespace,
      name: victim.metadata.name,
    });
    await waitFor("workspace removed from its sandbox", async () => {
      const ids = await sandboxes.workspacesOn(namespace, full);
      return !ids.includes(`${namespace}.${victim.metadata.name}`);
    });
    await createWorkspace(namespace, "d");
    const d = await readyWs(namespace, "d");
    assert.ok(
      counts.has(d.status!.sandboxPod!),
      "the freed slot is reused: no new sandbox for the next workspace",
    );
    const after = new Map<string, number>();
    for (const n of ["a", "b", "c", "d"].filter((x) => x !== victim.metadata.name)) {
      const pod = (await getWs(namespace, n)).status!.sandboxPod!;
      after.set(pod, (after.get(pod) ?? 0) + 1);
    }
    for (const [pod, n] of after) assert.ok(n <= 2, `${pod} holds ${n}`);
  });

  it("a sandbox under pressure takes no new workspaces and the fleet grows", async () => {
    const namespace = ns.pressure;
    await createFleet(namespace, { warmEmpty: 1 });
    await waitPods(namespace, 1);
    await createWorkspace(namespace, "one");
    const one = await readyWs(namespace, "one");
    await waitPods(namespace, 2);
    const before = (await getFleet(namespace)).status?.desiredReplicas ?? 0;
    await sandboxes.setLoad(namespace, one.status!.sandboxPod!, { cpu: 0.95 });
    await waitFor(
      "fleet grows under pressure",
      async () => ((await getFleet(namespace)).status?.desiredReplicas ?? 0) > before,
    );
    await createWorkspace(namespace, "two");
    const two = await readyWs(namespace, "two");
    assert.notEqual(two.status?.sandboxPod, one.status?.sandboxPod, "the pressured sandbox took nothing new");
    const fleet = await getFleet(namespace);
    assert.match(fleet.status?.lastScaleReason ?? "", /pressure|in use/);
  });

  it("scales down after the window, removing only empty sandboxes", async () => {
    const namespace = ns.scaledown;
    await createFleet(namespace, { warmEmpty: 1 });
    await waitPods(namespace, 1);
    for (const o of ["a", "b", "c"]) await createWorkspace(namespace, `ws-${o}`, o);
    const kept = await readyWs(namespace, "ws-a");
    await Promise.all(["ws-b", "ws-c"].map((n) => readyWs(namespace, n)));
    await waitPods(namespace, 4);
    for (const n of ["ws-b", "ws-c"])
      await custom().deleteNamespacedCustomObject({ ...group("workspaces"), namespace, name: n });
    await waitFor("scaled down to 2", async () => (await deploymentReplicas(namespace)) === 2, {
      timeoutMs: 60_000,
    });
    await waitPods(namespace, 2);
    const pods = (await readyPods(namespace)).map((p) => p.metadata!.name);
    assert.ok(pods.includes(kept.status!.sandboxPod), "the sandbox holding a workspace survived");
    assert.equal((await getWs(namespace, "ws-a")).status?.sandboxPod, kept.status?.sandboxPod);
    const events = await api(k8s.CoreV1Api).listNamespacedEvent({ namespace });
    assert.ok(
      events.items.some((e) => e.reason === "ScaledDown"),
      "a ScaledDown event was recorded",
    );
  });

  it("kubectl scale pins the size", async () => {
    const namespace = ns.pinned;
    await createFleet(namespace);
    await waitPods(namespace, 1);
    const res = await kubectl(["scale", "sbf/fleet", "-n", namespace, "--replicas=3"]);
    assert.equal(res.code, 0, res.stderr);
    await waitFor("deployment at 3", async () => (await deploymentReplicas(namespace)) === 3);
    await waitPods(namespace, 3);
    const fleet = await getFleet(namespace);
    assert.match(fleet.status?.lastScaleReason ?? "", /pinned to 3/);
    const unpin = await kubectl([
      "patch",
      "sbf",
      "fleet",
      "-n",
      namespace,
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/replicas"}]',
    ]);
    assert.equal(unpin.code, 0, unpin.stderr);
    await waitFor("back to autoscaling", async () => (await deploymentReplicas(namespace)) === 1, {
      timeoutMs: 60_000,
    });
  });

  it("drains a sandbox holding workspaces before a pinned size removes it, then places its workspaces again", async () => {
    const namespace = ns.drain;
    await createFleet(namespace, { warmEmpty: 1, drainTimeout: "3s" });
    await waitPods(namespace, 1);
    await createWorkspace(namespace, "w-a", "a");
    await createWorkspace(namespace, "w-b", "b");
    const [a, b] = [await readyWs(namespace, "w-a"), await readyWs(namespace, "w-b")];
    await waitPods(namespace, 3);
    const res = await kubectl(["scale", "sbf/fleet", "-n", namespace, "--replicas=1"]);
    assert.equal(res.code, 0, res.stderr);
    const victim = [a, b].sort((x, y) => x.status!.sandboxPod!.localeCompare(y.status!.sandboxPod!))[0]!;
    const survivor = victim === a ? b : a;
    const drainingPod = await waitFor("the occupied sandbox is marked draining first", async () => {
      const pod = await api(k8s.CoreV1Api)
        .readNamespacedPod({ namespace, name: victim.status!.sandboxPod! })
        .catch(() => undefined);
      return pod?.metadata?.annotations?.["agentry.dev/draining"] === "true" ? pod : undefined;
    });
    assert.ok(!drainingPod.metadata?.deletionTimestamp, "still running while it drains");
    await waitFor(
      "scaled to 1 after the drain timeout",
      async () => (await deploymentReplicas(namespace)) === 1,
      {
        timeoutMs: 60_000,
      },
    );
    await waitPods(namespace, 1);
    assert.equal(
      (await getWs(namespace, survivor.metadata.name)).status?.sandboxPod,
      survivor.status?.sandboxPod,
    );
    const moved = await waitFor("the drained workspace waits for room", async () => {
      const w = await getWs(namespace, victim.metadata.name);
      return w.status?.phase === "Pending" ? w : undefined;
    });
    assert.equal(moved.status?.sandboxPod, undefined);
    const unpin = await kubectl([
      "patch",
      "sbf",
      "fleet",
      "-n",
      namespace,
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/replicas"}]',
    ]);
    assert.equal(unpin.code, 0, unpin.stderr);
    const placed = await readyWs(namespace, victim.metadata.name);
    assert.notEqual(placed.status?.sandboxPod, survivor.status?.sandboxPod, "owners still do not share");
  });

  it("keeps every placement across an operator restart", async () => {
    const namespace = ns.restart;
    await createFleet(namespace, { warmEmpty: 1 });
    await waitPods(namespace, 1);
    const wsNames = ["r1", "r2", "r3", "r4"];
    for (const [i, n] of wsNames.entries()) await createWorkspace(namespace, n, i % 2 ? "x" : undefined);
    const before = new Map(
      (await Promise.all(wsNames.map((n) => readyWs(namespace, n)))).map((w) => [
        w.metadata.name,
        w.status?.sandboxPod,
      ]),
    );
    await operator.kill("SIGKILL");
    operator = await startOperator(suite, {
      namespaces: Object.values(ns),
      podAddressMap: sandboxes.mapFile,
      args: [...LEASE],
    });
    await waitFor("new operator leads", async () => (await operator.counter("agentry_leader")) === 1, {
      timeoutMs: 30_000,
    });
    await waitFor(
      "new operator reconciled the fleet",
      async () =>
        (await operator.counter("controller_runtime_reconcile_total", { controller: "sandboxfleet" })) > 5,
    );
    for (const n of wsNames)
      assert.equal((await getWs(namespace, n)).status?.sandboxPod, before.get(n), `${n} kept its sandbox`);
    assert.equal(
      await operator.counter("agentry_writes_total", { kind: "Workspace", verb: "status" }),
      0,
      "no workspace re-placed",
    );
  });
});
