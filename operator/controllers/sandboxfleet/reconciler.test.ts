// The SandboxFleet reconciler on fake informers, a recording client, fake sandbox runtimes
// and a fake Deployment controller (test/harness/fakekube.ts, fakefleet.ts), with the clock
// injected: which writes, sandbox calls and events each situation causes, that windows and
// cooldowns pass in time and not in passes, that a placement is decided once even when the
// watch lags, and that an unchanged world causes no write. The same controller against the
// real control plane is tested in test/fleet/.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { Metrics } from "../../../lib/kube/metrics.ts";
import { PodAddresses } from "../../../lib/kube/podaddresses.ts";
import { TypedInformer } from "../../../lib/kube/typed.ts";
import { silentLogger } from "../../../lib/log.ts";
import { FakeDeployments, FakeSandboxes } from "../../../test/harness/fakefleet.ts";
import {
  FakeClock,
  FakeInformer,
  RecordingClient,
  RecordingRecorder,
  type Call,
} from "../../../test/harness/fakekube.ts";
import { ANNOTATION_DRAINING, DELETION_COST, WORKSPACE_FINALIZER } from "./desired.ts";
import { SandboxFleetReconciler, type FleetInformers } from "./reconciler.ts";

const NS = "team";
const KEY = `${NS}/pool`;
const SECOND = 1000;

const fleetObject = (spec: Record<string, unknown> = {}, generation = 1): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "SandboxFleet",
  metadata: { name: "pool", namespace: NS, uid: "uid-fleet", generation },
  spec: {
    template: { image: "registry.example/sandbox:1" },
    minReplicas: 1,
    maxReplicas: 5,
    warmEmpty: 1,
    samplingInterval: "1s",
    scaleUpWindow: 2,
    scaleDownWindow: 2,
    cooldown: "0s",
    idleTTL: "3s",
    ...spec,
  },
});

const workspaceObject = (name: string, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: {
    name,
    namespace: NS,
    uid: `uid-${name}`,
    generation: 1,
    creationTimestamp: "2026-01-01T00:00:00Z",
  },
  spec: { fleetRef: { name: "pool" }, ...spec },
});

const short = (calls: Call[]) =>
  calls.map((c) => `${c.verb} ${c.kind}${c.subresource ? `/${c.subresource}` : ""} ${c.name ?? ""}`.trim());

describe("SandboxFleetReconciler (fake informers, recording client, fake sandboxes)", () => {
  let informers: { [K in keyof FleetInformers]: FakeInformer };
  let client: RecordingClient;
  let recorder: RecordingRecorder;
  let clock: FakeClock;
  let sandboxes: FakeSandboxes;
  let deployments: FakeDeployments;
  let reconciler: SandboxFleetReconciler;
  let invalid: string[];

  const pass = () => reconciler.reconcile(KEY);
  /** Moves the clock on and runs a pass. */
  const after = (ms: number) => {
    clock.advance(ms);
    return pass();
  };
  const writes = () => short(client.writes());
  const fleet = () => informers.fleets.get(NS, "pool") as unknown as SandboxFleet;
  const ws = (name: string) => informers.workspaces.get(NS, name) as unknown as Workspace;
  const replicas = () =>
    (informers.deployments.get(NS, "pool-sandbox")?.["spec"] as { replicas?: number } | undefined)?.replicas;
  const pods = () => informers.sandboxPods.list(NS).map((p) => p.metadata.name!);
  /** A fleet whose Deployment and pods are up (one sample taken). */
  const startFleet = async (spec: Record<string, unknown> = {}) => {
    informers.fleets.set(fleetObject(spec));
    await pass();
    deployments.settle();
    await after(SECOND);
  };
  /** Places a workspace (its own owner by default) and returns its sandbox. */
  const place = async (name: string, spec: Record<string, unknown> = { ownerId: name }) => {
    informers.workspaces.set(workspaceObject(name, spec));
    await pass();
    return ws(name).status?.sandboxPod;
  };

  beforeEach(() => {
    informers = {
      fleets: new FakeInformer("SandboxFleet"),
      workspaces: new FakeInformer("Workspace"),
      deployments: new FakeInformer("Deployment"),
      replicaSets: new FakeInformer("ReplicaSet"),
      sandboxPods: new FakeInformer("Pod"),
      fleetPolicies: new FakeInformer("NetworkPolicy"),
      agents: new FakeInformer("AgentRuntime"),
    };
    client = new RecordingClient(Object.values(informers));
    recorder = new RecordingRecorder();
    clock = new FakeClock();
    sandboxes = new FakeSandboxes(clock.now);
    deployments = new FakeDeployments(informers);
    invalid = [];
    const report = (o: KubeObject, problem: string) => invalid.push(`${o.metadata.name}: ${problem}`);
    reconciler = new SandboxFleetReconciler({
      client,
      // The operator's typed views over the raw caches, as operator/main.ts wires them.
      informers: {
        ...informers,
        fleets: new TypedInformer("SandboxFleet", informers.fleets, report),
        workspaces: new TypedInformer("Workspace", informers.workspaces, report),
        agents: new TypedInformer("AgentRuntime", informers.agents, report),
      },
      recorder,
      metrics: new Metrics(false),
      log: silentLogger(),
      sandboxes,
      addresses: new PodAddresses(),
      controllerId: "agentry",
      peers: { gateway: { namespace: "agentry-system", podLabels: { app: "gateway" } } },
      now: clock.now,
    });
  });

  it("makes the NetworkPolicy and the Deployment, samples once per interval, and writes nothing while nothing changes", async () => {
    informers.fleets.set(fleetObject());
    const first = await pass();
    assert.deepEqual(writes(), [
      "apply NetworkPolicy pool-sandbox",
      "apply Deployment pool-sandbox",
      "apply SandboxFleet/status pool",
    ]);
    assert.equal(replicas(), 1, "min 1, warmEmpty 1, nothing in use");
    assert.equal(first?.requeueAfterMs, SECOND, "the next sample is one interval away");

    deployments.settle();
    client.clear();
    // An event between samples (the pod's arrival): no sandbox is read, the next sample stays put.
    const between = await after(300);
    assert.deepEqual(sandboxes.made("status"), []);
    assert.equal(between?.requeueAfterMs, 700);
    await after(700);
    assert.equal(sandboxes.made("status").length, 1, "one sample, one read of the sandbox");
    assert.ok(writes().includes(`patch Pod ${pods()[0]}`), "marked as an empty sandbox");
    assert.equal(fleet().status?.readyReplicas, 1);

    client.clear();
    await after(SECOND);
    await after(SECOND);
    assert.deepEqual(writes(), []);
  });

  it("scales after the window's time has passed, however many passes come before", async () => {
    await startFleet();
    await place("a");
    // The operator's own writes come back as events: many passes within one interval.
    for (let i = 0; i < 20; i++) await after(10);
    assert.equal(replicas(), 1, "no sample yet asked for more");
    assert.ok(!recorder.reasons().includes("ScaledUp"));
    await after(SECOND - 200); // the first sample asking for 2: the window (2 samples) is 1 s
    assert.equal(replicas(), 1);
    await after(SECOND);
    assert.equal(replicas(), 2);
    assert.match(recorder.events.at(-1)!.message, /scaled up 1 → 2: 1 in use \+ 1 warm = 2/);
    assert.match(fleet().status?.lastScaleReason ?? "", /scaled up 1 → 2/);
  });

  it("waits out the cooldown between two changes", async () => {
    await startFleet({ scaleUpWindow: 1, cooldown: "5s" });
    await place("a");
    await after(SECOND);
    assert.equal(replicas(), 2, "a window of one sample passes at once");
    deployments.settle();
    await place("b");
    for (let s = 1; s < 5; s++) {
      await after(SECOND);
      assert.equal(replicas(), 2, `${s} s after the change`);
    }
    await after(SECOND);
    assert.equal(replicas(), 3);
  });

  it("places a workspace once, even when the watch has not brought the placement back", async () => {
    await startFleet();
    informers.workspaces.set(workspaceObject("a", { ownerId: "alice" }));
    informers.workspaces.set(workspaceObject("b", { ownerId: "bob" }));
    informers.workspaces.hold();
    client.clear();
    await pass();
    assert.deepEqual(
      writes()
        .filter((w) => w.includes("Workspace"))
        .sort(),
      ["apply Workspace/status a", "apply Workspace/status b", "patch Workspace a", "patch Workspace b"],
    );
    assert.equal(ws("a").status, undefined, "the cache does not show it yet");
    const [pod] = pods();
    assert.deepEqual(sandboxes.on(pod!), [`${NS}.a`]);

    // Passes before the watch catches up read what was written, not the stale cache: a is
    // not placed again (nor b in its place), and nothing is written twice.
    client.clear();
    await after(10);
    await after(10);
    assert.deepEqual(
      writes().filter((w) => w.includes("Workspace")),
      [],
    );
    assert.deepEqual(sandboxes.made("put"), [`put ${pod} ${NS}.a`]);
    informers.workspaces.release();
    assert.equal(ws("a").status?.sandboxPod, pod);
    assert.equal(ws("b").status?.phase, "Pending", "b waits for an empty sandbox");
    assert.ok(ws("a").metadata.finalizers?.includes(WORKSPACE_FINALIZER));
  });

  it("shrinks only by empty sandboxes idle for idleTTL, marked cheapest to delete before the Deployment shrinks", async () => {
    await startFleet({ scaleDownWindow: 1 });
    const home = await place("a");
    await after(SECOND);
    await after(SECOND);
    deployments.settle();
    assert.equal(pods().length, 2);
    await place("b");
    await after(SECOND);
    await after(SECOND);
    deployments.settle();
    assert.equal(pods().length, 3);
    // b goes: its sandbox is empty, and the fleet wants 2 (1 in use + 1 warm).
    const b = ws("b");
    informers.workspaces.set({
      ...b,
      metadata: { ...b.metadata, deletionTimestamp: "2026-01-01T00:00:09Z" },
    });
    await after(10);
    assert.deepEqual(sandboxes.on(b.status!.sandboxPod!), [], "b left its sandbox");
    assert.equal(
      informers.workspaces.get(NS, "b")?.metadata.finalizers?.length ?? 0,
      0,
      "its finalizer went",
    );
    informers.workspaces.remove(NS, "b");
    // Empty sandboxes go once idle for idleTTL (3 s): the one to go is marked first, and the
    // Deployment shrinks at the next sample, once the mark is visible.
    const marked = () =>
      informers.sandboxPods.list(NS).filter((p) => p.metadata.annotations?.[DELETION_COST] === "-1000");
    await after(SECOND); // the first sample that sees b's sandbox empty
    await after(SECOND);
    await after(SECOND);
    assert.equal(marked().length, 0, "2 s idle: not long enough yet");
    assert.ok(
      informers.sandboxPods.list(NS).every((p) => p.metadata.annotations?.[ANNOTATION_DRAINING] !== "true"),
      "no sandbox drains while empty ones are still to go",
    );
    await after(SECOND);
    const leaving = marked();
    assert.equal(leaving.length, 1);
    assert.equal(leaving[0]!.metadata.annotations?.[ANNOTATION_DRAINING], "true");
    assert.notEqual(leaving[0]!.metadata.name, home);
    assert.equal(replicas(), 3, "not before the mark is seen");
    await after(SECOND);
    assert.equal(replicas(), 2);
    deployments.settle();
    assert.ok(pods().includes(home!), "the sandbox holding a workspace stays");
    assert.ok(!pods().includes(leaving[0]!.metadata.name!), "the marked one went");
    assert.ok(recorder.reasons().includes("ScaledDown"));
    for (let s = 0; s < 5; s++) await after(SECOND);
    assert.equal(replicas(), 2, "the fleet keeps its warm sandbox");
  });

  it("drains an occupied sandbox a pinned size removes, and lets it go at drainTimeout", async () => {
    await startFleet({ scaleUpWindow: 1 });
    await place("a");
    await after(SECOND);
    deployments.settle();
    await place("b");
    await after(SECOND);
    deployments.settle();
    const [homeA, homeB] = [ws("a").status!.sandboxPod!, ws("b").status!.sandboxPod!];
    assert.equal(pods().length, 3);
    informers.fleets.set({
      ...fleetObject({ scaleUpWindow: 1, replicas: 1, drainTimeout: "3s" }, 2),
      status: fleet().status,
    });
    await after(10); // a new spec is sampled at once
    const victim = [homeA, homeB].sort()[0]!;
    assert.ok(sandboxes.made("drain").includes(`drain ${victim}`), "the occupied sandbox to leave drains");
    assert.ok(!sandboxes.made("drain").includes(`drain ${victim === homeA ? homeB : homeA}`));
    await after(SECOND);
    assert.equal(replicas(), 2, "the empty sandbox goes at once");
    deployments.settle();
    await after(SECOND);
    assert.equal(replicas(), 2, "the drained one waits for drainTimeout");
    await after(SECOND);
    await after(SECOND);
    await after(SECOND);
    assert.equal(replicas(), 1);
    deployments.settle();
    assert.deepEqual(pods(), [[homeA, homeB].sort()[1]]);
    await after(10);
    const moved = victim === homeA ? "a" : "b";
    assert.equal(ws(moved).status?.phase, "Pending", "its workspace waits for room");
  });

  it("keeps a sandbox held by a Workspace whose spec does not parse, and reports that workspace once", async () => {
    await startFleet();
    const pod = await place("a", { ownerId: "alice" });
    const a = ws("a");
    informers.workspaces.set({ ...a, spec: { ...a.spec, idleTimeout: "soon" } });
    client.clear();
    await after(10);
    await after(10);
    assert.deepEqual(
      writes().filter((w) => w.includes("Workspace")),
      [],
      "it is left alone",
    );
    assert.equal(invalid.length, 1, invalid.join("\n"));
    assert.match(invalid[0]!, /spec\.idleTimeout/);
    // Another owner never joins its sandbox, and it is never taken for an empty one.
    const other = await place("b", { ownerId: "bob" });
    assert.notEqual(other, pod);
    for (let s = 0; s < 6; s++) {
      await after(SECOND);
      deployments.settle();
    }
    assert.ok(pods().includes(pod!));
  });

  it("leaves a fleet whose spec does not parse alone", async () => {
    informers.fleets.set(fleetObject({ minReplicas: -1 }));
    informers.workspaces.set(workspaceObject("a"));
    await pass();
    await after(SECOND);
    assert.deepEqual(writes(), []);
    assert.equal(invalid.length, 1);
    assert.match(invalid[0]!, /spec\.minReplicas/);
  });

  it("never dials a pod that only carries the fleet's labels, and says so once", async () => {
    await startFleet();
    const [own] = pods();
    const copy = informers.sandboxPods.get(NS, own!)!;
    informers.sandboxPods.set({
      ...copy,
      metadata: { ...copy.metadata, name: "impostor", uid: "uid-impostor", ownerReferences: [] },
    });
    await after(SECOND);
    await after(SECOND);
    assert.ok(!sandboxes.calls.some((c) => c.includes("impostor")));
    assert.deepEqual(
      recorder.reasons().filter((r) => r === "ForeignPod"),
      ["ForeignPod"],
    );
    assert.equal(await place("b"), own, "nor placed on");
  });

  it("tells a workspace its fleet is missing, and lets a deleted one go", async () => {
    informers.workspaces.set(workspaceObject("a"));
    informers.workspaces.set({
      ...workspaceObject("gone"),
      metadata: {
        ...workspaceObject("gone").metadata,
        finalizers: [WORKSPACE_FINALIZER],
        deletionTimestamp: "2026-01-01T00:00:00Z",
      },
    });
    const result = await pass();
    assert.equal(ws("a").status?.conditions?.find((c) => c.type === "Ready")?.reason, "FleetNotFound");
    assert.deepEqual(ws("gone").metadata.finalizers, []);
    assert.ok(result?.requeueAfterMs, "looked at again when the wait may stall");
  });

  it("reports a failed Deployment write in the fleet's status and retries", async () => {
    informers.fleets.set(fleetObject());
    client.failNext("apply", "Deployment", new Error("the apiserver is away"));
    await assert.rejects(pass(), /could not update Deployment pool-sandbox: the apiserver is away/);
    const ready = fleet().status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /apiserver is away/);
    client.clear();
    await pass();
    assert.ok(writes().includes("apply Deployment pool-sandbox"));
  });
});
