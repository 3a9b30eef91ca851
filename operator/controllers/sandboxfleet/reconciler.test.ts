// The SandboxFleet reconciler on fake informers, a recording client, fake sandbox runtimes
// and a fake Deployment controller (test/harness/fleetbed.ts), with the clock injected:
// which writes, sandbox calls and events each situation causes, that a placement is decided
// once even when the watch lags, that what does not parse is left alone, and that an
// unchanged world causes no write. Its sizing is tested in resize.test.ts; the same
// controller against the real control plane in test/fleet/.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { FleetTestbed, NS, SECOND, fleetObject, workspaceObject } from "../../../test/harness/fleetbed.ts";
import { ANNOTATION_IDLE_SUSPENDED } from "../../../api/v1alpha1/index.ts";
import { WORKSPACE_FINALIZER } from "./desired.ts";

describe("SandboxFleetReconciler", () => {
  let t: FleetTestbed;
  beforeEach(() => {
    t = new FleetTestbed();
  });

  it("makes the NetworkPolicy and the Deployment, samples once per interval, and writes nothing while nothing changes", async () => {
    t.informers.fleets.set(fleetObject());
    const first = await t.pass();
    assert.deepEqual(t.writes(), [
      "apply NetworkPolicy pool-sandbox",
      "apply Deployment pool-sandbox",
      "apply SandboxFleet/status pool",
    ]);
    assert.equal(t.replicas(), 1, "min 1, warmEmpty 1, nothing in use");
    assert.equal(first?.requeueAfterMs, SECOND, "the next sample is one interval away");

    t.deployments.settle();
    t.client.clear();
    // An event between samples (the pod's arrival): no sandbox is read, the next sample stays put.
    const between = await t.after(300);
    assert.deepEqual(t.sandboxes.made("status"), []);
    assert.equal(between?.requeueAfterMs, 700);
    await t.after(700);
    assert.equal(t.sandboxes.made("status").length, 1, "one sample, one read of the sandbox");
    assert.ok(t.writes().includes(`patch Pod ${t.pods()[0]}`), "marked as an empty sandbox");
    assert.equal(t.fleet().status?.readyReplicas, 1);

    t.client.clear();
    await t.after(SECOND);
    await t.after(SECOND);
    assert.deepEqual(t.writes(), []);
  });

  it("places a workspace once, even when the watch has not brought the placement back", async () => {
    await t.startFleet();
    t.informers.workspaces.set(workspaceObject("a", { ownerId: "alice" }));
    t.informers.workspaces.set(workspaceObject("b", { ownerId: "bob" }));
    t.informers.workspaces.hold();
    t.client.clear();
    await t.pass();
    assert.deepEqual(
      t
        .writes()
        .filter((w) => w.includes("Workspace"))
        .sort(),
      ["apply Workspace/status a", "apply Workspace/status b", "patch Workspace a", "patch Workspace b"],
    );
    assert.equal(t.ws("a").status, undefined, "the cache does not show it yet");
    const [pod] = t.pods();
    assert.deepEqual(t.sandboxes.on(pod!), [`${NS}.a`]);

    // Passes before the watch catches up read what was written, not the stale cache: a is
    // not placed again (nor b in its place), and nothing is written twice.
    t.client.clear();
    await t.after(10);
    await t.after(10);
    assert.deepEqual(
      t.writes().filter((w) => w.includes("Workspace")),
      [],
    );
    assert.deepEqual(t.sandboxes.made("put"), [`put ${pod} ${NS}.a`]);
    t.informers.workspaces.release();
    assert.equal(t.ws("a").status?.sandboxPod, pod);
    assert.equal(t.ws("b").status?.phase, "Pending", "b waits for an empty sandbox");
    assert.ok(t.ws("a").metadata.finalizers?.includes(WORKSPACE_FINALIZER));
  });

  it("keeps a sandbox held by a Workspace whose spec does not parse, and reports that workspace once", async () => {
    await t.startFleet();
    const pod = await t.place("a", { ownerId: "alice" });
    const a = t.ws("a");
    t.informers.workspaces.set({ ...a, spec: { ...a.spec, idleTimeout: "soon" } });
    t.client.clear();
    await t.after(10);
    await t.after(10);
    assert.deepEqual(
      t.writes().filter((w) => w.includes("Workspace")),
      [],
      "it is left alone",
    );
    assert.equal(t.invalid.length, 1, t.invalid.join("\n"));
    assert.match(t.invalid[0]!, /spec\.idleTimeout/);
    // Another owner never joins its sandbox, and it is never taken for an empty one.
    const other = await t.place("b", { ownerId: "bob" });
    assert.notEqual(other, pod);
    for (let s = 0; s < 6; s++) {
      await t.after(SECOND);
      t.deployments.settle();
    }
    assert.ok(t.pods().includes(pod!));
  });

  it("leaves a fleet whose spec does not parse alone", async () => {
    t.informers.fleets.set(fleetObject({ minReplicas: -1 }));
    t.informers.workspaces.set(workspaceObject("a"));
    await t.pass();
    await t.after(SECOND);
    assert.deepEqual(t.writes(), []);
    assert.equal(t.invalid.length, 1);
    assert.match(t.invalid[0]!, /spec\.minReplicas/);
  });

  it("never dials a pod that only carries the fleet's labels, and says so once", async () => {
    await t.startFleet();
    const [own] = t.pods();
    const copy = t.informers.sandboxPods.get(NS, own!)!;
    t.informers.sandboxPods.set({
      ...copy,
      metadata: { ...copy.metadata, name: "impostor", uid: "uid-impostor", ownerReferences: [] },
    });
    await t.after(SECOND);
    await t.after(SECOND);
    assert.ok(!t.sandboxes.calls.some((c) => c.includes("impostor")));
    assert.deepEqual(
      t.recorder.reasons().filter((r) => r === "ForeignPod"),
      ["ForeignPod"],
    );
    assert.equal(await t.place("b"), own, "nor placed on");
  });

  it("tells a workspace its fleet is missing, and lets a deleted one go", async () => {
    t.informers.workspaces.set(workspaceObject("a"));
    t.informers.workspaces.set({
      ...workspaceObject("gone"),
      metadata: {
        ...workspaceObject("gone").metadata,
        finalizers: [WORKSPACE_FINALIZER],
        deletionTimestamp: "2026-01-01T00:00:00Z",
      },
    });
    const result = await t.pass();
    assert.equal(t.ws("a").status?.conditions?.find((c) => c.type === "Ready")?.reason, "FleetNotFound");
    assert.deepEqual(t.ws("gone").metadata.finalizers, []);
    assert.ok(result?.requeueAfterMs, "looked at again when the wait may stall");
  });

  it("reports a failed Deployment write in the fleet's status and retries", async () => {
    t.informers.fleets.set(fleetObject());
    t.client.failNext("apply", "Deployment", new Error("the apiserver is away"));
    await assert.rejects(t.pass(), /could not update Deployment pool-sandbox: the apiserver is away/);
    const ready = t.fleet().status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /apiserver is away/);
    t.client.clear();
    await t.pass();
    assert.ok(t.writes().includes("apply Deployment pool-sandbox"));
  });

  it("wakes a workspace asleep for idleness when its sandbox is asked for it, and puts it back there", async () => {
    await t.startFleet({ warmEmpty: 2 });
    const asleep = workspaceObject("a");
    t.informers.workspaces.set({
      ...asleep,
      metadata: { ...asleep.metadata, annotations: { [ANNOTATION_IDLE_SUSPENDED]: "2026-01-01T00:00:00Z" } },
    });
    await t.after(10);
    assert.equal(t.ws("a").status?.phase, "Suspended");
    const asked = t.pods().sort()[1]!;
    t.sandboxes.ask(asked, `${NS}.a`);
    await t.after(SECOND); // the sample that reads the ask
    assert.equal(t.ws("a").metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED], undefined);
    assert.ok(t.recorder.reasons().includes("Woken"));
    await t.after(10); // the Workspace's update event
    assert.equal(t.ws("a").status?.sandboxPod, asked, "the sandbox asked, not the first by name");
  });
});
