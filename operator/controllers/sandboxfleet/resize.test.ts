// The SandboxFleet reconciler's sizing on its testbed (test/harness/fleetbed.ts), with the
// clock moved by hand: windows and cooldown pass in time, not in passes; the fleet shrinks
// only by empty sandboxes, marked before the Deployment shrinks; an occupied sandbox leaves
// only through a drain.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { FleetTestbed, NS, SECOND, fleetObject } from "../../../test/harness/fleetbed.ts";
import { ANNOTATION_DRAINING, ANNOTATION_DRAINING_SINCE, DELETION_COST } from "./desired.ts";

describe("SandboxFleetReconciler: size", () => {
  let t: FleetTestbed;
  beforeEach(() => {
    t = new FleetTestbed();
  });
  /** Workspaces a and b, each on its own sandbox, and the warm empty one. */
  const twoOccupiedAndOneEmpty = async () => {
    await t.startFleet({ scaleUpWindow: 1 });
    await t.place("a");
    await t.after(SECOND);
    t.deployments.settle();
    await t.place("b");
    await t.after(SECOND);
    t.deployments.settle();
  };

  it("scales after the window's time has passed, however many passes come before", async () => {
    await t.startFleet();
    await t.place("a");
    // The operator's own writes come back as events: many passes within one interval.
    for (let i = 0; i < 20; i++) await t.after(10);
    assert.equal(t.replicas(), 1, "no sample yet asked for more");
    assert.ok(!t.recorder.reasons().includes("ScaledUp"));
    await t.after(SECOND - 200); // the first sample asking for 2: the window (2 samples) is 1 s
    assert.equal(t.replicas(), 1);
    await t.after(SECOND);
    assert.equal(t.replicas(), 2);
    assert.match(t.recorder.events.at(-1)!.message, /scaled up 1 → 2: 1 in use \+ 1 warm = 2/);
    assert.match(t.fleet().status?.lastScaleReason ?? "", /scaled up 1 → 2/);
  });

  it("waits out the cooldown between two changes", async () => {
    await t.startFleet({ scaleUpWindow: 1, cooldown: "5s" });
    await t.place("a");
    await t.after(SECOND);
    assert.equal(t.replicas(), 2, "a window of one sample passes at once");
    t.deployments.settle();
    await t.place("b");
    for (let s = 1; s < 5; s++) {
      await t.after(SECOND);
      assert.equal(t.replicas(), 2, `${s} s after the change`);
    }
    await t.after(SECOND);
    assert.equal(t.replicas(), 3);
  });

  it("shrinks only by empty sandboxes idle for idleTTL, marked cheapest to delete before the Deployment shrinks", async () => {
    await t.startFleet({ scaleDownWindow: 1 });
    const home = await t.place("a");
    await t.after(SECOND);
    await t.after(SECOND);
    t.deployments.settle();
    assert.equal(t.pods().length, 2);
    await t.place("b");
    await t.after(SECOND);
    await t.after(SECOND);
    t.deployments.settle();
    assert.equal(t.pods().length, 3);
    // b goes: its sandbox is empty, and the fleet wants 2 (1 in use + 1 warm).
    const b = t.ws("b");
    t.informers.workspaces.set({
      ...b,
      metadata: { ...b.metadata, deletionTimestamp: "2026-01-01T00:00:09Z" },
    });
    await t.after(10);
    assert.deepEqual(t.sandboxes.on(b.status!.sandboxPod!), [], "b left its sandbox");
    assert.equal(
      t.informers.workspaces.get(NS, "b")?.metadata.finalizers?.length ?? 0,
      0,
      "its finalizer went",
    );
    t.informers.workspaces.remove(NS, "b");
    // Empty sandboxes go once idle for idleTTL (3 s): the one to go is marked first, and the
    // Deployment shrinks at the next sample, once the mark is visible.
    const marked = () =>
      t.informers.sandboxPods.list(NS).filter((p) => p.metadata.annotations?.[DELETION_COST] === "-1000");
    await t.after(SECOND); // the first sample that sees b's sandbox empty
    await t.after(SECOND);
    await t.after(SECOND);
    assert.equal(marked().length, 0, "2 s idle: not long enough yet");
    assert.ok(
      t.informers.sandboxPods.list(NS).every((p) => p.metadata.annotations?.[ANNOTATION_DRAINING] !== "true"),
      "no sandbox drains while empty ones are still to go",
    );
    await t.after(SECOND);
    const leaving = marked();
    assert.equal(leaving.length, 1);
    assert.equal(leaving[0]!.metadata.annotations?.[ANNOTATION_DRAINING], "true");
    assert.notEqual(leaving[0]!.metadata.name, home);
    assert.equal(t.replicas(), 3, "not before the mark is seen");
    await t.after(SECOND);
    assert.equal(t.replicas(), 2);
    t.deployments.settle();
    assert.ok(t.pods().includes(home!), "the sandbox holding a workspace stays");
    assert.ok(!t.pods().includes(leaving[0]!.metadata.name!), "the marked one went");
    assert.ok(t.recorder.reasons().includes("ScaledDown"));
    for (let s = 0; s < 5; s++) await t.after(SECOND);
    assert.equal(t.replicas(), 2, "the fleet keeps its warm sandbox");
  });

  it("drains an occupied sandbox a pinned size removes, and lets it go at drainTimeout", async () => {
    await twoOccupiedAndOneEmpty();
    const [homeA, homeB] = [t.ws("a").status!.sandboxPod!, t.ws("b").status!.sandboxPod!];
    assert.equal(t.pods().length, 3);
    t.informers.fleets.set({
      ...fleetObject({ scaleUpWindow: 1, replicas: 1, drainTimeout: "3s" }, 2),
      status: t.fleet().status,
    });
    await t.after(10); // a new spec is sampled at once
    const victim = [homeA, homeB].sort()[0]!;
    assert.ok(t.sandboxes.made("drain").includes(`drain ${victim}`), "the occupied sandbox to leave drains");
    assert.ok(!t.sandboxes.made("drain").includes(`drain ${victim === homeA ? homeB : homeA}`));
    await t.after(SECOND);
    assert.equal(t.replicas(), 2, "the empty sandbox goes at once");
    t.deployments.settle();
    await t.after(SECOND);
    assert.equal(t.replicas(), 2, "the drained one waits for drainTimeout");
    await t.after(SECOND);
    await t.after(SECOND);
    await t.after(SECOND);
    assert.equal(t.replicas(), 1);
    t.deployments.settle();
    assert.deepEqual(t.pods(), [[homeA, homeB].sort()[1]]);
    await t.after(10);
    const moved = victim === homeA ? "a" : "b";
    assert.equal(t.ws(moved).status?.phase, "Pending", "its workspace waits for room");
  });

  it("goes on with a drain after a restart: the drain's start is on the pod, drainTimeout is not restarted", async () => {
    await twoOccupiedAndOneEmpty();
    t.informers.fleets.set({
      ...fleetObject({ scaleUpWindow: 1, replicas: 1, drainTimeout: "3s" }, 2),
      status: t.fleet().status,
    });
    await t.after(10); // a new spec is sampled at once: one occupied sandbox drains
    const victim = [t.ws("a").status!.sandboxPod!, t.ws("b").status!.sandboxPod!].sort()[0]!;
    assert.ok(t.sandboxes.made("drain").includes(`drain ${victim}`));
    const since = t.informers.sandboxPods.get(NS, victim)!.metadata.annotations?.[ANNOTATION_DRAINING_SINCE];
    assert.equal(since, t.clock.now().toISOString(), "the drain's start is written with the mark");
    await t.after(SECOND);
    assert.equal(t.replicas(), 2, "the empty sandbox goes at once");
    t.deployments.settle();
    await t.after(SECOND);
    assert.equal(t.replicas(), 2, "the drained one waits for drainTimeout");
    t.restart(); // a new leader, 2 s into the drain
    await t.after(SECOND); // 3 s: drained, marked cheapest to delete
    assert.equal(t.replicas(), 2);
    await t.after(SECOND); // the mark is visible: the Deployment shrinks
    assert.equal(t.replicas(), 1, "gone after drainTimeout from the drain's start, not from the restart");
  });
});
