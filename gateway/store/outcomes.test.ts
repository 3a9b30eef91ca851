import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutcomeQueue, type AuditOutcome } from "./outcomes.ts";

const outcome = (id: number): AuditOutcome => ({
  id: String(id),
  outcome: "succeeded",
  status: 201,
  at: new Date(),
});

describe("OutcomeQueue", () => {
  it("writes outcomes queued in one turn as one batch, the next ones as the next batch", async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const q = new OutcomeQueue(async (b) => {
      batches.push(b.map((o) => o.id));
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
    });
    q.push(outcome(1));
    q.push(outcome(2));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    q.push(outcome(3)); // while the first batch is in flight
    q.push(outcome(4));
    assert.equal(q.pending, 4);
    release();
    assert.equal(await q.flush(5_000), true);
    assert.deepEqual(batches, [
      ["1", "2"],
      ["3", "4"],
    ]);
    assert.equal(q.pending, 0);
  });

  it("retries a failed batch until the database takes it; flush says when it did not", async () => {
    let failing = true;
    const written: string[] = [];
    const errors: number[] = [];
    const q = new OutcomeQueue(
      (b) => {
        if (failing) return Promise.reject(new Error("database down"));
        written.push(...b.map((o) => o.id));
        return Promise.resolve();
      },
      { onError: (_e, info) => errors.push(info.queued) },
    );
    q.push(outcome(1));
    assert.equal(await q.flush(150), false);
    assert.ok(errors.length >= 1);
    failing = false;
    assert.equal(await q.flush(10_000), true);
    assert.deepEqual(written, ["1"]);
  });

  it("drops new outcomes past its bound and says so", () => {
    const dropped: number[] = [];
    const q = new OutcomeQueue(() => new Promise(() => undefined), {
      maxQueued: 2,
      onError: (_e, info) => dropped.push(info.dropped),
    });
    for (let i = 0; i < 3; i++) q.push(outcome(i));
    assert.equal(q.pending, 2);
    assert.deepEqual(dropped, [1]);
  });
});
