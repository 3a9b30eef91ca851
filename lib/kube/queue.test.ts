import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenBucket } from "./client.ts";
import { WorkQueue } from "./queue.ts";

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
