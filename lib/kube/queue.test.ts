import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { TokenBucket } from "./client.ts";
import { Lane, WorkQueue } from "./queue.ts";

/** The queue's contract written the slow, obvious way: one array per lane. */
class ModelQueue {
  readonly lanes: string[][] = [[], [], []];
  readonly processing = new Set<string>();
  readonly dirty = new Map<string, number>();

  get length(): number {
    return this.lanes.reduce((n, l) => n + l.length, 0);
  }
  add(key: string, lane: number): void {
    if (this.processing.has(key)) {
      this.dirty.set(key, Math.min(lane, this.dirty.get(key) ?? lane));
      return;
    }
    const at = this.lanes.findIndex((l) => l.includes(key));
    if (at >= 0 && at <= lane) return;
    if (at >= 0) this.lanes[at]!.splice(this.lanes[at]!.indexOf(key), 1);
    this.lanes[lane]!.push(key);
  }
  take(): string | undefined {
    const key = this.lanes.find((l) => l.length > 0)?.shift();
    if (key !== undefined) this.processing.add(key);
    return key;
  }
  done(key: string): void {
    this.processing.delete(key);
    const lane = this.dirty.get(key);
    this.dirty.delete(key);
    if (lane !== undefined) this.add(key, lane);
  }
}

type Op = { op: "add"; key: string; lane: Lane } | { op: "take" } | { op: "done"; pick: number };
const ops = fc.array(
  fc.oneof(
    fc.record({
      op: fc.constant("add" as const),
      key: fc.constantFrom("a", "b", "c", "d", "e"),
      lane: fc.constantFrom(Lane.Children, Lane.Objects, Lane.Resync),
    }),
    fc.record({ op: fc.constant("take" as const) }),
    fc.record({ op: fc.constant("done" as const), pick: fc.nat() }),
  ),
  { maxLength: 80 },
);

describe("WorkQueue", () => {
  it("queues a key once however often it is added", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    assert.equal(q.length, 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
  });

  it("never hands a key to two workers; a key changed while processing comes back once", async () => {
    const q = new WorkQueue();
    q.add("a");
    const key = await q.get();
    q.add("a");
    q.add("a");
    assert.equal(q.length, 0, "not queued while processing");
    q.done(key!);
    assert.equal(q.length, 1, "re-queued after done");
    assert.equal(await q.get(), "a");
    q.done("a");
    assert.equal(q.length, 0);
  });

  it("wakes a waiting worker when a key arrives", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add("x");
    assert.equal(await next, "x");
  });

  it("backs off failures exponentially per key and forgets on success", () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => q.addRateLimited("k"));
    assert.deepEqual(delays, [10, 20, 40, 80, 100, 100]);
    assert.equal(q.retries("k"), 6);
    q.forget("k");
    assert.equal(q.retries("k"), 0);
    q.shutDown();
  });

  it("addAfter: the sooner of two visits wins, a later one does not delay it", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const q = new WorkQueue({ now: () => Date.now() });
    q.addAfter("k", 10_000);
    q.addAfter("k", 1_000); // sooner: replaces the 10 s visit
    q.addAfter("k", 5_000); // later than the pending 1 s one: ignored
    t.mock.timers.tick(999);
    assert.equal(q.length, 0);
    t.mock.timers.tick(1);
    assert.equal(q.length, 1, "visited after 1 s");
    t.mock.timers.tick(20_000);
    assert.equal(q.length, 1, "no second visit from the replaced timers");
    q.shutDown();
  });

  it("serves children's events before new objects, and new objects before resyncs", async () => {
    const q = new WorkQueue();
    q.add("resync-1", Lane.Resync);
    q.add("new-1");
    q.add("child-1", Lane.Children);
    q.add("new-2", Lane.Objects);
    q.add("child-2", Lane.Children);
    q.add("resync-2", Lane.Resync);
    const order: string[] = [];
    while (q.length) order.push((await q.get())!);
    assert.deepEqual(order, ["child-1", "child-2", "new-1", "new-2", "resync-1", "resync-2"]);
  });

  it("moves a waiting key up to a more urgent lane, never down", async () => {
    const q = new WorkQueue();
    q.add("a", Lane.Resync);
    q.add("b", Lane.Objects);
    q.add("a", Lane.Children); // up: served first
    q.add("b", Lane.Resync); // not down
    assert.equal(q.length, 2);
    assert.equal(q.laneOf("a"), Lane.Children);
    assert.equal(q.laneOf("b"), Lane.Objects);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(q.length, 0, "the entry a left in the resync lane is not served again");
  });

  it("a key added while processing comes back in the most urgent lane it was added in", async () => {
    const q = new WorkQueue();
    q.add("k");
    await q.get();
    q.add("k", Lane.Resync);
    q.add("k", Lane.Children);
    q.add("other", Lane.Objects);
    q.done("k");
    assert.equal(q.laneOf("k"), Lane.Children);
    assert.equal(await q.get(), "k");
  });

  it("behaves as the obvious model of lanes under any sequence of adds, gets and dones", async () => {
    await fc.assert(
      fc.asyncProperty(ops, async (steps: Op[]) => {
        const q = new WorkQueue();
        const m = new ModelQueue();
        for (const s of steps) {
          if (s.op === "add") {
            q.add(s.key, s.lane);
            m.add(s.key, s.lane);
          } else if (s.op === "take") {
            const expected = m.take();
            if (expected === undefined) continue; // get() would wait
            assert.equal(await q.get(), expected);
          } else {
            const busy = [...m.processing];
            if (busy.length === 0) continue;
            const key = busy[s.pick % busy.length]!;
            q.done(key);
            m.done(key);
          }
          assert.equal(q.length, m.length);
          assert.equal(q.busy, m.processing.size);
        }
        // Nothing is lost: what waits comes out, each key once, in the model's order.
        for (let key = m.take(); key !== undefined; key = m.take()) assert.equal(await q.get(), key);
        assert.equal(q.length, 0);
      }),
      { numRuns: 500 },
    );
  });

  it("keeps first-come order over many keys and moves", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 5000; i++) q.add(`k${i}`, Lane.Resync);
    for (let i = 0; i < 5000; i += 2) q.add(`k${i}`, Lane.Objects);
    const got: string[] = [];
    while (q.length) got.push((await q.get())!);
    const evens = Array.from({ length: 2500 }, (_, i) => `k${2 * i}`);
    const odds = Array.from({ length: 2500 }, (_, i) => `k${2 * i + 1}`);
    assert.deepEqual(got, [...evens, ...odds]);
  });

  it("cancelAfter drops a pending visit", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const q = new WorkQueue({ now: () => Date.now() });
    q.addAfter("k", 1_000);
    q.cancelAfter("k");
    q.cancelAfter("never-asked");
    t.mock.timers.tick(2_000);
    assert.equal(q.length, 0);
    q.shutDown();
  });

  it("addAfter keeps the more urgent lane of two visits for a key", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const q = new WorkQueue({ now: () => Date.now() });
    q.addAfter("k", 1_000, Lane.Resync);
    q.addAfter("k", 5_000, Lane.Children); // later: ignored, but its lane is kept
    t.mock.timers.tick(1_000);
    assert.equal(q.laneOf("k"), Lane.Children);
    q.shutDown();
  });

  it("returns undefined to workers after shutdown", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    assert.equal(await waiting, undefined);
    q.add("late");
    assert.equal(await q.get(), undefined);
  });

  it("reports depth and wait time", async () => {
    const depths: number[] = [];
    const waits: number[] = [];
    let t = 0;
    const q = new WorkQueue({
      observer: { depth: (n) => depths.push(n), waited: (s) => waits.push(s) },
      now: () => t,
    });
    q.add("a");
    t = 1500;
    await q.get();
    assert.deepEqual(depths, [1, 0]);
    assert.deepEqual(waits, [1.5]);
  });
});

describe("TokenBucket", () => {
  it("lets a burst through, then paces requests at qps", () => {
    let t = 0;
    const bucket = new TokenBucket(10, 3, () => t);
    assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 0]);
    assert.equal(Math.round(bucket.reserve()), 100);
    assert.equal(Math.round(bucket.reserve()), 200);
    t = 1000;
    assert.equal(bucket.reserve(), 0, "refilled after a second");
  });
});
