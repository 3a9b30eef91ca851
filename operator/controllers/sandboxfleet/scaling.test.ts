import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ScaleGate, desiredReplicas, safeScaleDownTarget } from "./scaling.ts";

const bounds = { minReplicas: 1, maxReplicas: 10, warmEmpty: 1 };

describe("desiredReplicas", () => {
  const cases: [
    string,
    Partial<typeof bounds> & { replicas?: number },
    [number, number, number],
    number,
    RegExp,
  ][] = [
    ["starts at min plus warm", {}, [0, 0, 0], 1, /0 in use \+ 1 warm = 1/],
    ["grows with occupied sandboxes", {}, [3, 0, 0], 4, /3 in use/],
    ["adds what waiting workspaces need", {}, [2, 3, 0], 6, /3 for waiting workspaces/],
    ["adds one under pressure", {}, [2, 0, 2], 4, /1 for pressure on 2 sandbox/],
    ["caps at max", {}, [20, 5, 0], 10, /capped at maxReplicas/],
    ["raises to min", { minReplicas: 3 }, [0, 0, 0], 3, /raised to minReplicas/],
    ["pinned wins", { replicas: 7 }, [0, 0, 0], 7, /pinned to 7/],
  ];
  for (const [name, b, [occupied, newSandboxesNeeded, pressured], expected, reason] of cases) {
    it(name, () => {
      const t = desiredReplicas({ ...bounds, ...b }, { occupied, newSandboxesNeeded, pressured });
      assert.equal(t.replicas, expected);
      assert.match(t.reason, reason);
    });
  }

  it("always stays within [min, max] and covers occupied sandboxes when max allows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 5 }),
        fc.nat(80),
        fc.nat(10),
        fc.nat(10),
        (min, span, warm, occupied, need, pressured) => {
          const b = { minReplicas: min, maxReplicas: min + span, warmEmpty: warm };
          const t = desiredReplicas(b, { occupied, newSandboxesNeeded: need, pressured });
          assert.ok(t.replicas >= b.minReplicas && t.replicas <= b.maxReplicas);
          if (occupied + warm <= b.maxReplicas) assert.ok(t.replicas >= occupied + warm);
        },
      ),
    );
  });
});

describe("safeScaleDownTarget", () => {
  it("removes at most the idle empty sandboxes", () => {
    assert.equal(safeScaleDownTarget(5, 2, 1), 4);
    assert.equal(safeScaleDownTarget(5, 2, 10), 2);
    assert.equal(safeScaleDownTarget(5, 7, 0), 7, "scale-up is not limited");
  });
});

describe("ScaleGate", () => {
  it("waits for the window and the cooldown, and never flaps", () => {
    const gate = new ScaleGate({ scaleUpWindow: 2, scaleDownWindow: 3, cooldownMs: 1000 });
    assert.equal(gate.observe(2, 4, 0), undefined, "one sample is not enough");
    assert.equal(gate.observe(2, 4, 100), 4, "two agreeing samples scale up");
    assert.equal(gate.observe(4, 2, 200), undefined);
    assert.equal(gate.observe(4, 2, 300), undefined);
    assert.equal(gate.observe(4, 2, 400), undefined, "three samples, but within the cooldown");
    assert.equal(gate.observe(4, 2, 1200), 2);
    assert.equal(gate.observe(2, 3, 1300), undefined);
    assert.equal(gate.observe(2, 1, 1400), undefined, "direction change resets the streak");
    assert.equal(gate.observe(2, 2, 1500), undefined);
  });

  it("applies a pinned size at once", () => {
    const gate = new ScaleGate({ scaleUpWindow: 5, scaleDownWindow: 5, cooldownMs: 60_000 });
    assert.equal(gate.observe(2, 6, 0, true), 6);
  });

  it("a signal that alternates around the current size never changes it with windows of 2", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.boolean(), (n, startUp) => {
        const gate = new ScaleGate({ scaleUpWindow: 2, scaleDownWindow: 2, cooldownMs: 0 });
        for (let i = 0; i < n; i++) {
          const up = (i % 2 === 0) === startUp;
          assert.equal(gate.observe(5, up ? 6 : 4, i * 10), undefined);
        }
      }),
    );
  });
});
