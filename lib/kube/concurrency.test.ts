import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { forEachLimit } from "./concurrency.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("forEachLimit", () => {
  it("runs every item once, never more than `limit` at a time (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(3), { maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        async (waits, limit) => {
          let running = 0;
          let peak = 0;
          const seen: number[] = [];
          await forEachLimit(
            waits.map((w, i) => [w, i] as const),
            limit,
            async ([w, i]) => {
              running++;
              peak = Math.max(peak, running);
              for (let k = 0; k < w; k++) await tick();
              seen.push(i);
              running--;
            },
          );
          assert.deepEqual(
            [...seen].sort((a, b) => a - b),
            waits.map((_, i) => i),
          );
          assert.ok(peak <= limit, `peak ${peak} > ${limit}`);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("runs the rest after a failure and then throws the first error", async () => {
    const done: number[] = [];
    await assert.rejects(
      forEachLimit([1, 2, 3, 4], 2, async (n) => {
        await tick();
        if (n === 2) throw new Error("two");
        if (n === 3) throw new Error("three");
        done.push(n);
      }),
      /two/,
    );
    assert.deepEqual(done.sort(), [1, 4]);
  });

  it("does nothing for no items", async () => {
    await forEachLimit([], 4, () => Promise.reject(new Error("never")));
  });
});
