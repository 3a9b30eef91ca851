import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { RecentMap } from "./recent.ts";

describe("RecentMap", () => {
  it("keeps the most recently used entries up to its limit", () => {
    const m = new RecentMap<string, number>(2);
    m.set("a", 1);
    m.set("b", 2);
    assert.equal(m.get("a"), 1, "a is now the most recent");
    m.set("c", 3);
    assert.equal(m.get("b"), undefined, "b, the least recently used, went");
    assert.equal(m.get("a"), 1);
    assert.equal(m.get("c"), 3);
    assert.equal(m.size, 2);
    assert.throws(() => new RecentMap(0), /limit 0/);
  });

  it("agrees with a model: the last `limit` distinct keys touched and not deleted, each with its last value", () => {
    const op = fc.oneof(
      fc.record({ set: fc.integer({ min: 0, max: 9 }), value: fc.integer() }),
      fc.record({ get: fc.integer({ min: 0, max: 9 }) }),
      fc.record({ del: fc.integer({ min: 0, max: 9 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 60 }), (limit, ops) => {
        const m = new RecentMap<number, number>(limit);
        const order: number[] = []; // least recent first
        const values = new Map<number, number>();
        const touch = (k: number) => {
          const i = order.indexOf(k);
          if (i >= 0) order.splice(i, 1);
          order.push(k);
        };
        for (const o of ops) {
          if ("set" in o) {
            m.set(o.set, o.value);
            values.set(o.set, o.value);
            touch(o.set);
            if (order.length > limit) values.delete(order.shift()!);
          } else if ("del" in o) {
            m.delete(o.del);
            values.delete(o.del);
            const i = order.indexOf(o.del);
            if (i >= 0) order.splice(i, 1);
          } else {
            const want = values.get(o.get);
            assert.equal(m.get(o.get), want);
            if (want !== undefined) touch(o.get);
          }
        }
        assert.equal(m.size, order.length);
        for (const k of order) assert.equal(m.get(k), values.get(k));
      }),
    );
  });
});
