import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Batcher } from "./batch.ts";
import { idsInOrder, type AuditStart } from "./store.ts";

const fulfilled = <R>(values: R[]): PromiseSettledResult<R>[] =>
  values.map((value) => ({ status: "fulfilled", value }));

/** A runner whose batches are answered by hand; it records what each batch held. */
function manual() {
  const batches: { items: number[]; answer: (r: PromiseSettledResult<number>[] | Error) => void }[] = [];
  const run = (items: number[]) =>
    new Promise<PromiseSettledResult<number>[]>((resolve, reject) =>
      batches.push({ items, answer: (r) => (r instanceof Error ? reject(r) : resolve(r)) }),
    );
  return { batches, run };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("Batcher", () => {
  it("sends the calls of one turn together, each answered with its own result", async () => {
    const seen: number[][] = [];
    const b = new Batcher<number, number>((items) => {
      seen.push(items);
      return Promise.resolve(fulfilled(items.map((i) => i * 10)));
    });
    assert.deepEqual(await Promise.all([1, 2, 3].map((i) => b.add(i))), [10, 20, 30]);
    assert.deepEqual(seen, [[1, 2, 3]]);
    assert.equal(await b.add(4), 40); // a lone call goes out on its own
    assert.deepEqual(seen, [[1, 2, 3], [4]]);
  });

  it("keeps to maxInFlight; what comes meanwhile waits and goes in the next batch, at most maxBatch", async () => {
    const m = manual();
    const b = new Batcher<number, number>(m.run, { maxInFlight: 1, maxBatch: 2 });
    const first = b.add(1);
    await turn();
    const later = [2, 3, 4].map((i) => b.add(i));
    await turn();
    assert.deepEqual(
      m.batches.map((x) => x.items),
      [[1]],
      "nothing more starts while one runs",
    );
    assert.equal(b.waiting, 3);
    m.batches[0]!.answer(fulfilled([100]));
    assert.equal(await first, 100);
    await turn();
    assert.deepEqual(
      m.batches.map((x) => x.items),
      [[1], [2, 3]],
    );
    m.batches[1]!.answer(fulfilled([200, 300]));
    await turn();
    await turn();
    m.batches[2]!.answer(fulfilled([400]));
    assert.deepEqual(await Promise.all(later), [200, 300, 400]);
  });

  it("runs two batches at once by default", async () => {
    const m = manual();
    const b = new Batcher<number, number>(m.run, { maxBatch: 1 });
    const all = [1, 2, 3].map((i) => b.add(i));
    await turn();
    await turn();
    assert.deepEqual(
      m.batches.map((x) => x.items),
      [[1], [2]],
    );
    m.batches[1]!.answer(fulfilled([2]));
    await turn();
    await turn();
    assert.equal(m.batches.length, 3);
    m.batches[0]!.answer(fulfilled([1]));
    m.batches[2]!.answer(fulfilled([3]));
    assert.deepEqual(await Promise.all(all), [1, 2, 3]);
  });

  it("fails one item on its own, and a whole batch when the runner throws; goes on after both", async () => {
    const m = manual();
    const b = new Batcher<number, number>(m.run);
    const [a, c] = [b.add(1), b.add(2)];
    await turn();
    m.batches[0]!.answer([
      { status: "rejected", reason: new Error("bad row") },
      { status: "fulfilled", value: 2 },
    ]);
    await assert.rejects(a, /bad row/);
    assert.equal(await c, 2);
    const [d, e] = [b.add(3), b.add(4)];
    await turn();
    m.batches[1]!.answer(new Error("database gone"));
    await assert.rejects(d, /database gone/);
    await assert.rejects(e, /database gone/);
    const f = b.add(5);
    await turn();
    m.batches[2]!.answer([]);
    await assert.rejects(f, /no answer/);
  });

  it("answers every call exactly once, whatever the arrival pattern (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        async (gaps, maxBatch, maxInFlight) => {
          let running = 0;
          let most = 0;
          const b = new Batcher<number, number>(
            async (items) => {
              assert.ok(items.length <= maxBatch);
              most = Math.max(most, ++running);
              await turn();
              running--;
              return fulfilled(items.map((i) => -i));
            },
            { maxBatch, maxInFlight },
          );
          const calls: Promise<number>[] = [];
          for (const [i, gap] of gaps.entries()) {
            calls.push(b.add(i));
            for (let k = 0; k < gap; k++) await turn();
          }
          assert.deepEqual(
            await Promise.all(calls),
            gaps.map((_, i) => -i),
          );
          assert.ok(most <= maxInFlight, `${most} batches ran at once`);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("idsInOrder", () => {
  const start = (requestId: string, name?: string): AuditStart => ({
    requestId,
    actor: "alice",
    groups: ["g"],
    verb: "create",
    kind: "Workspace",
    namespace: "ns",
    name,
  });
  const row = (id: string, e: AuditStart) => ({
    id,
    request_id: e.requestId,
    actor: e.actor,
    verb: e.verb,
    kind: e.kind,
    namespace: e.namespace,
    name: e.name ?? null,
  });

  it("takes the rows' order when it matches, and matches by fields when it does not", () => {
    const s = [start("a", "x"), start("b"), start("c", "z")];
    assert.deepEqual(
      idsInOrder(
        s,
        s.map((e, i) => row(String(i + 1), e)),
      ),
      ["1", "2", "3"],
    );
    assert.deepEqual(idsInOrder(s, [row("3", s[2]!), row("1", s[0]!), row("2", s[1]!)]), ["1", "2", "3"]);
  });

  it("hands rows alike in every field out one each", () => {
    const s = [start("a", "x"), start("a", "x")];
    assert.deepEqual(idsInOrder(s, [row("8", s[0]!), row("9", s[0]!)]).sort(), ["8", "9"]);
  });

  it("refuses rows that do not match, or too few", () => {
    const s = [start("a"), start("b")];
    assert.throws(() => idsInOrder(s, [row("1", s[0]!)]), /returned 1 rows for 2/);
    assert.throws(() => idsInOrder(s, [row("1", s[0]!), row("2", start("other"))]), /do not match/);
  });
});
