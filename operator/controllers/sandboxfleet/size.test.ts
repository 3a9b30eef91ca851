import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ANNOTATION_DRAINING, ANNOTATION_DRAINING_SINCE, DELETION_COST } from "./desired.ts";
import { drainMarkedAt, emptyDrainState, marksToWrite, planOutgoing, type SandboxSlot } from "./drain.ts";
import { planSize, type SizeInput, type SizeState } from "./size.ts";

const SECOND = 1000;

const slot = (name: string, workspaces: string[] = [], over: Partial<SandboxSlot> = {}): SandboxSlot => ({
  name,
  ready: true,
  workspaces,
  unflushed: [],
  annotations: {},
  ...over,
});
const settings = { idleTtlMs: 10 * SECOND, drainTimeoutMs: 30 * SECOND, pinned: false, stored: false };

describe("planOutgoing", () => {
  it("lets empty sandboxes go once idle for idleTTL, not-ready ones and the longest idle first", () => {
    const state = {
      ...emptyDrainState(),
      emptySince: new Map([
        ["old", 0],
        ["new", 8 * SECOND],
      ]),
    };
    const sandboxes = [slot("busy", ["w"]), slot("new"), slot("old"), slot("down", [], { ready: false })];
    const out = planOutgoing(state, sandboxes, { current: 4, target: 1 }, settings, 10 * SECOND);
    assert.deepEqual(out.outgoing, ["down", "old"]);
    assert.deepEqual(
      [...out.emptySince],
      [
        ["new", 8 * SECOND],
        ["old", 0],
        ["down", 10 * SECOND],
      ],
    );
    assert.deepEqual([...out.draining], [], "empty ones are still to go: nothing drains");
  });

  it("with a pinned size, every empty sandbox may go at once", () => {
    const out = planOutgoing(
      emptyDrainState(),
      [slot("a"), slot("b", ["w"])],
      { current: 2, target: 1 },
      { ...settings, pinned: true },
      0,
    );
    assert.deepEqual(out.outgoing, ["a"]);
  });

  const drainCases: [string, Partial<typeof settings>, string[], number, number, string[], string[]][] = [
    // name, settings, unflushed on the drained one, since (ms before now), now, outgoing, abandoned
    ["drains the least loaded first, and waits", {}, [], 0, 0, [], []],
    ["lets it go at drainTimeout", {}, [], 30 * SECOND, 30 * SECOND, ["one"], []],
    [
      "with a store, as soon as its workspaces are flushed",
      { stored: true },
      [],
      SECOND,
      SECOND,
      ["one"],
      [],
    ],
    ["with a store, not in the pass that began the drain", { stored: true }, [], 0, 0, [], []],
    [
      "with a store, at drainTimeout, reporting what was not flushed",
      { stored: true },
      ["w1"],
      30 * SECOND,
      30 * SECOND,
      ["one"],
      ["w1"],
    ],
  ];
  for (const [name, over, unflushed, since, now, outgoing, abandoned] of drainCases) {
    it(name, () => {
      const state = { ...emptyDrainState(), drainSince: new Map(since ? [["one", now - since]] : []) };
      const sandboxes = [slot("two", ["w2", "w3"]), slot("one", ["w1"], { unflushed })];
      const out = planOutgoing(state, sandboxes, { current: 2, target: 1 }, { ...settings, ...over }, now);
      assert.deepEqual([...out.draining], ["one"]);
      assert.deepEqual(out.outgoing, outgoing);
      assert.deepEqual(
        out.abandoned.flatMap((a) => a.workspaces),
        abandoned,
      );
      assert.equal(out.drainSince.get("one"), since ? now - since : now);
    });
  }
});

describe("marksToWrite", () => {
  it("marks leaving sandboxes cheapest and draining, occupied ones dear, and writes only what differs", () => {
    const sandboxes = [
      slot("leaving"),
      slot("full", ["a", "b"], { annotations: { [DELETION_COST]: "102" } }),
      slot("was-draining", [], { annotations: { [DELETION_COST]: "0", [ANNOTATION_DRAINING]: "true" } }),
      slot("empty", [], { annotations: { [DELETION_COST]: "0" } }),
    ];
    assert.deepEqual(marksToWrite(sandboxes, new Set(["leaving"]), new Set(), new Map(), 5 * SECOND), [
      { name: "leaving", cost: "-1000", draining: true, tell: "drain", since: 5 * SECOND },
      { name: "was-draining", cost: "0", draining: false, tell: "undrain" },
    ]);
  });

  it("writes when a drain began beside its mark, and keeps the time a pod's mark already says", () => {
    const marked = new Date(2 * SECOND).toISOString();
    const sandboxes = [
      slot("new-drain", ["a"]),
      slot("leaving-now", ["b"], {
        annotations: {
          [DELETION_COST]: "101",
          [ANNOTATION_DRAINING]: "true",
          [ANNOTATION_DRAINING_SINCE]: marked,
        },
      }),
    ];
    const drainSince = new Map([
      ["new-drain", 4 * SECOND],
      ["leaving-now", 3 * SECOND],
    ]);
    assert.deepEqual(
      marksToWrite(sandboxes, new Set(["leaving-now"]), new Set(["new-drain"]), drainSince, 9 * SECOND),
      [
        { name: "new-drain", cost: "101", draining: true, tell: "drain", since: 4 * SECOND },
        { name: "leaving-now", cost: "-1000", draining: true, tell: "drain", since: 2 * SECOND },
      ],
    );
  });
});

describe("a drain across a restart", () => {
  const marks = (since: string | undefined, draining = "true") => ({
    [ANNOTATION_DRAINING]: draining,
    ...(since !== undefined ? { [ANNOTATION_DRAINING_SINCE]: since } : {}),
  });

  it("reads the drain's start from the pod's marks: only with the draining mark, never later than now", () => {
    const at = (since: string | undefined, draining?: string) =>
      drainMarkedAt({ annotations: marks(since, draining) }, 100 * SECOND);
    assert.equal(at(new Date(40 * SECOND).toISOString()), 40 * SECOND);
    assert.equal(at(new Date(400 * SECOND).toISOString()), 100 * SECOND, "a clock ahead of ours: now");
    assert.equal(at(new Date(40 * SECOND).toISOString(), "false"), undefined);
    assert.equal(at("yesterday"), undefined);
    assert.equal(at(undefined), undefined);
  });

  it("a new leader (no memory) lets a marked sandbox go at drainTimeout from the mark, not from its start", () => {
    const now = 100 * SECOND;
    const since = (ago: number) => new Date(now - ago).toISOString();
    const sandboxes = (ago: number) => [
      slot("two", ["w2", "w3"]),
      slot("one", ["w1"], { annotations: marks(since(ago)) }),
    ];
    const plan = (ago: number) =>
      planOutgoing(emptyDrainState(), sandboxes(ago), { current: 2, target: 1 }, settings, now);
    assert.deepEqual(plan(30 * SECOND).outgoing, ["one"], "drained for drainTimeout: goes");
    assert.deepEqual(plan(10 * SECOND).outgoing, [], "drained for 10s: waits");
    assert.equal(plan(10 * SECOND).drainSince.get("one"), now - 10 * SECOND);
  });
});

const input = (over: Partial<SizeInput> = {}): SizeInput => ({
  bounds: { minReplicas: 1, maxReplicas: 10, warmEmpty: 1 },
  demand: { occupied: 1, newSandboxesNeeded: 0, pressured: 0 },
  sandboxes: [slot("busy", ["w"]), slot("spare-1"), slot("spare-2")],
  current: 3,
  livePods: 3,
  windows: { scaleUpWindow: 1, scaleDownWindow: 1, samplingIntervalMs: SECOND, cooldownMs: 0 },
  drain: { idleTtlMs: 0, drainTimeoutMs: 30 * SECOND, stored: false },
  ...over,
});
const start: SizeState = { ...emptyDrainState(), samples: [] };

describe("planSize", () => {
  it("creates the Deployment at the target", () => {
    const plan = planSize(start, input({ current: undefined, sandboxes: [], livePods: 0 }), 0);
    assert.equal(plan.replicas, 2);
    assert.equal(plan.change, undefined);
  });

  it("marks the sandbox to go first, and shrinks once the mark is visible", () => {
    const first = planSize(start, input(), 0);
    assert.equal(first.replicas, 3);
    assert.match(first.held ?? "", /marked cheapest/);
    assert.deepEqual(
      first.marks.map((m) => [m.name, m.cost]),
      [
        ["busy", "101"],
        ["spare-1", "-1000"],
        ["spare-2", "0"],
      ],
    );
    const marked = input({
      sandboxes: [
        slot("busy", ["w"], { annotations: { [DELETION_COST]: "101" } }),
        slot("spare-1", [], { annotations: { [DELETION_COST]: "-1000", [ANNOTATION_DRAINING]: "true" } }),
        slot("spare-2", [], { annotations: { [DELETION_COST]: "0" } }),
      ],
    });
    const second = planSize(first.state, marked, SECOND);
    assert.equal(second.replicas, 2);
    assert.deepEqual(second.change, { up: false, reason: "scaled down 3 → 2: 1 in use + 1 warm = 2" });
    assert.deepEqual(second.marks, [], "the marks stand");
    assert.equal(second.state.lastChangeAt, SECOND);
  });

  it("holds a shrink while pods of the last one are still going", () => {
    const plan = planSize(start, input({ livePods: 4 }), 0);
    assert.equal(plan.replicas, 3);
    assert.match(plan.held ?? "", /still going/);
  });

  it("never goes below what holds workspaces, nor outside [min, max]", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        (load, min, span, pinned) => {
          const sandboxes = load.map((n, i) =>
            slot(
              `s${i}`,
              Array.from({ length: n }, (_, j) => `w${i}.${j}`),
              { annotations: { [DELETION_COST]: "-1000" } },
            ),
          );
          const bounds = {
            minReplicas: min,
            maxReplicas: min + span,
            warmEmpty: 1,
            ...(pinned ? { replicas: 0 } : {}),
          };
          const occupied = load.filter((n) => n > 0).length;
          const plan = planSize(
            start,
            input({
              bounds,
              demand: { occupied, newSandboxesNeeded: 0, pressured: 0 },
              sandboxes,
              current: load.length,
              livePods: load.length,
            }),
            0,
          );
          assert.ok(plan.replicas >= Math.min(occupied, load.length), "what holds workspaces stays");
          if (plan.change?.up) assert.ok(plan.replicas <= bounds.maxReplicas, "up to max at most");
          if (plan.change && !plan.change.up)
            assert.ok(plan.replicas >= bounds.minReplicas, "down to min at least");
        },
      ),
    );
  });
});
