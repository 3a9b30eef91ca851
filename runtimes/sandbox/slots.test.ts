import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProblemError } from "../../lib/http/problem.ts";
import { FairSlots, type SlotLimits } from "./slots.ts";

const slots = (limits: Partial<SlotLimits> = {}) =>
  new FairSlots({ total: 4, perKey: 2, queuePerKey: 2, maxWaitMs: 60_000, ...limits });

const is429 = (err: unknown) => {
  assert.ok(err instanceof ProblemError, String(err));
  assert.equal(err.status, 429);
  assert.equal(err.headers["retry-after"], "2");
  return true;
};

/** Resolves with the order in which pending acquisitions were granted. */
function track(s: FairSlots, keys: string[]) {
  const granted: string[] = [];
  const releases = new Map<string, (() => void)[]>();
  const pending = keys.map((key) =>
    s.acquire(key).then(
      (release) => {
        granted.push(key);
        releases.set(key, [...(releases.get(key) ?? []), release]);
      },
      () => undefined,
    ),
  );
  return { granted, releases, pending };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("FairSlots", () => {
  it("grants at once while the workspace and the sandbox have room", async () => {
    const s = slots();
    await s.acquire("a");
    await s.acquire("a");
    await s.acquire("b");
    assert.deepEqual([s.active(), s.active("a"), s.active("b"), s.waiting()], [3, 2, 1, 0]);
  });

  it("never lets one workspace take every slot: its third command waits while others run", async () => {
    const s = slots();
    await s.acquire("a");
    await s.acquire("a");
    const { granted } = track(s, ["a"]);
    await settle();
    assert.deepEqual(granted, []);
    assert.equal(s.waiting("a"), 1);
    await s.acquire("b");
    await s.acquire("b");
    assert.equal(s.active(), 4);
  });

  it("refuses with 429 and Retry-After beyond the workspace's queue", async () => {
    const s = slots({ queuePerKey: 1 });
    await s.acquire("a");
    await s.acquire("a");
    void s.acquire("a").catch(() => undefined);
    await assert.rejects(s.acquire("a"), (err: unknown) => is429(err) && /workspace "a"/.test(String(err)));
    // Another workspace is not affected.
    await s.acquire("b");
  });

  it("refuses with 429 after the longest wait, and the slot it would have had goes on", async () => {
    const s = slots({ total: 1, maxWaitMs: 20 });
    const release = await s.acquire("a");
    await assert.rejects(s.acquire("b"), (err: unknown) => is429(err) && /within/.test(String(err)));
    assert.equal(s.waiting(), 0);
    release();
    await s.acquire("b");
  });

  it("hands freed slots to waiting workspaces in turn, not to the one that queued most", async () => {
    const s = slots({ total: 2, perKey: 2, queuePerKey: 10 });
    const first = [await s.acquire("x"), await s.acquire("x")];
    const { granted, pending } = track(s, ["a", "a", "a", "b", "c"]);
    await settle();
    assert.deepEqual(granted, []);
    for (const release of first) release();
    await settle();
    assert.deepEqual(granted, ["a", "b"]);
    assert.equal(s.waiting(), 3);
    void pending;
  });

  it("skips a waiting workspace that is at its own share", async () => {
    const s = slots({ total: 3, perKey: 1, queuePerKey: 10 });
    const releaseA = await s.acquire("a");
    const releaseB = await s.acquire("b");
    await s.acquire("c");
    const { granted } = track(s, ["a", "d"]);
    await settle();
    assert.deepEqual(granted, []);
    releaseB(); // a is still at its share: d goes first
    await settle();
    assert.deepEqual(granted, ["d"]);
    releaseA();
    await settle();
    assert.deepEqual(granted, ["d", "a"]);
  });

  it("drops a waiter whose client went away, and a release counts once", async () => {
    const s = slots({ total: 1 });
    const release = await s.acquire("a");
    const gone = new AbortController();
    const waiting = s.acquire("b", gone.signal);
    assert.equal(s.waiting("b"), 1);
    gone.abort(new Error("client went away"));
    await assert.rejects(waiting, /client went away/);
    assert.equal(s.waiting(), 0);
    release();
    release();
    assert.equal(s.active(), 0);
    await assert.rejects(s.acquire("c", gone.signal), /client went away/);
  });
});
