import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  desiredReplicas,
  keepSamples,
  planScale,
  safeScaleDownTarget,
  windowMs,
  type ScaleSample,
  type ScaleState,
} from "./scaling.ts";

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

const SECOND = 1000;
const settings = (over: Partial<ScaleState> = {}): ScaleState => ({
  scaleUpWindow: 2,
  scaleDownWindow: 3,
  samplingIntervalMs: SECOND,
  cooldownMs: 0,
  pinned: false,
  ...over,
});
const sample = (at: number, current: number, target: number): ScaleSample => ({
  at,
  current,
  target,
  reason: `${target} wanted`,
});
const decide = (state: ScaleState, samples: ScaleSample[], now = samples.at(-1)?.at ?? 0) => {
  const plan = planScale(state, samples, now);
  return plan.action === "scale" ? plan.replicas : undefined;
};

describe("planScale: windows and cooldown in time", () => {
  it("scales up once two samples one interval apart ask for it", () => {
    const s = settings();
    assert.equal(decide(s, [sample(0, 2, 4)]), undefined, "one sample is not enough");
    assert.equal(decide(s, [sample(0, 2, 4), sample(999, 2, 4)]), undefined, "not a whole interval yet");
    assert.equal(decide(s, [sample(0, 2, 4), sample(SECOND, 2, 4)]), 4);
  });

  it("scales down after the down window (three samples: two intervals)", () => {
    const s = settings();
    const run = [sample(0, 4, 2), sample(SECOND, 4, 2)];
    assert.equal(decide(s, run), undefined);
    assert.deepEqual(planScale(s, run, SECOND), { action: "hold", why: "window", until: 2 * SECOND });
    assert.equal(decide(s, [...run, sample(2 * SECOND, 4, 2)]), 2);
  });

  it("takes the latest sample's target, and says why in the reason", () => {
    const plan = planScale(settings(), [sample(0, 2, 3), sample(SECOND, 2, 5)], SECOND);
    assert.deepEqual(plan, { action: "scale", replicas: 5, reason: "scaled up 2 → 5: 5 wanted" });
  });

  it("waits out the cooldown after the last change", () => {
    const s = settings({ cooldownMs: 5 * SECOND, lastChangeAt: 0 });
    const run = [sample(SECOND, 2, 4), sample(2 * SECOND, 2, 4)];
    assert.deepEqual(planScale(s, run, 2 * SECOND), { action: "hold", why: "cooldown", until: 5 * SECOND });
    assert.equal(decide(s, run, 5 * SECOND), 4);
  });

  it("counts no sample taken before the last change, nor one about another size", () => {
    const s = settings({ lastChangeAt: SECOND });
    assert.equal(decide(s, [sample(0, 2, 4), sample(2 * SECOND, 2, 4)]), undefined);
    assert.equal(decide(settings(), [sample(0, 3, 4), sample(SECOND, 2, 4)]), undefined);
  });

  it("restarts the window when the direction changes or the target is reached", () => {
    const s = settings();
    assert.equal(decide(s, [sample(0, 2, 4), sample(SECOND, 2, 1), sample(2 * SECOND, 2, 4)]), undefined);
    assert.equal(decide(s, [sample(0, 2, 4), sample(SECOND, 2, 2), sample(2 * SECOND, 2, 4)]), undefined);
  });

  it("applies a pinned size at once, past windows and cooldown", () => {
    const s = settings({ scaleUpWindow: 5, cooldownMs: 60 * SECOND, lastChangeAt: 0, pinned: true });
    assert.equal(decide(s, [sample(10, 2, 6)]), 6);
  });

  it("holds when the fleet has the size asked for", () => {
    assert.deepEqual(planScale(settings(), [sample(0, 3, 3)], 0), { action: "hold", why: "steady" });
    assert.deepEqual(planScale(settings(), [], 0), { action: "hold", why: "steady" });
  });
});

// Samples in time order, each a given number of milliseconds after the previous one.
const arbSamples = (current: number) =>
  fc
    .array(fc.record({ gap: fc.nat(3 * SECOND), target: fc.integer({ min: 0, max: 8 }) }), {
      minLength: 1,
      maxLength: 40,
    })
    .map((steps) => {
      let at = 0;
      return steps.map(({ gap, target }) => sample((at += gap), current, target));
    });
const arbSettings = fc.record({
  scaleUpWindow: fc.integer({ min: 1, max: 6 }),
  scaleDownWindow: fc.integer({ min: 1, max: 6 }),
  samplingIntervalMs: fc.integer({ min: 100, max: 2 * SECOND }),
  cooldownMs: fc.nat(5 * SECOND),
  pinned: fc.constant(false),
});

describe("planScale: properties", () => {
  it("changes the size only when agreeing samples span the window, past the cooldown", () => {
    fc.assert(
      fc.property(arbSettings, arbSamples(4), fc.option(fc.nat(20 * SECOND)), (s, samples, lastChange) => {
        const state = { ...s, ...(lastChange !== null ? { lastChangeAt: lastChange } : {}) };
        const now = samples.at(-1)!.at;
        const plan = planScale(state, samples, now);
        if (plan.action !== "scale") return;
        const latest = samples.at(-1)!;
        assert.equal(plan.replicas, latest.target);
        const up = latest.target > latest.current;
        const span = windowMs(up ? s.scaleUpWindow : s.scaleDownWindow, s.samplingIntervalMs);
        // Back from the latest sample while they ask the same way (and came after the change).
        const asks = (x: ScaleSample) => x.target !== x.current && x.target > x.current === up;
        const after = (x: ScaleSample) => lastChange === null || x.at > lastChange;
        let first = samples.length - 1;
        while (first > 0 && asks(samples[first - 1]!) && after(samples[first - 1]!)) first--;
        assert.ok(asks(latest) && after(latest));
        assert.ok(samples[first]!.at <= latest.at - span, "agreeing samples cover the window");
        if (lastChange !== null) assert.ok(now - lastChange >= s.cooldownMs, "past the cooldown");
      }),
    );
  });

  it("never passes a window with a burst of samples, however many", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 1, max: 500 }), (window, count) => {
        const s = settings({ scaleUpWindow: window, scaleDownWindow: window });
        // Every reconcile within one interval (the operator's own writes coming back, say).
        const burst = Array.from({ length: count }, (_, i) => sample((i * SECOND) / (count + 1), 3, 5));
        assert.equal(decide(s, burst), undefined);
      }),
    );
  });

  it("scales a steady demand exactly when its window has passed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 100, max: 5 * SECOND }),
        fc.boolean(),
        (window, interval, up) => {
          const s = settings({
            scaleUpWindow: window,
            scaleDownWindow: window,
            samplingIntervalMs: interval,
          });
          const samples: ScaleSample[] = [];
          for (let i = 0; i < window; i++) {
            samples.push(sample(i * interval, 4, up ? 6 : 2));
            assert.equal(decide(s, samples) !== undefined, i === window - 1, `sample ${i + 1} of ${window}`);
          }
        },
      ),
    );
  });

  it("a signal that alternates around the current size never changes it with windows of 2", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.boolean(), (n, startUp) => {
        const s = settings({ scaleUpWindow: 2, scaleDownWindow: 2 });
        const samples: ScaleSample[] = [];
        for (let i = 0; i < n; i++) {
          const up = (i % 2 === 0) === startUp;
          samples.push(sample(i * SECOND, 5, up ? 6 : 4));
          assert.equal(decide(s, samples), undefined);
        }
      }),
    );
  });

  it("decides the same on the samples kept as on all of them", () => {
    fc.assert(
      fc.property(arbSettings, arbSamples(4), fc.option(fc.nat(20 * SECOND)), (s, samples, lastChange) => {
        const state = { ...s, ...(lastChange !== null ? { lastChangeAt: lastChange } : {}) };
        const now = samples.at(-1)!.at;
        const kept = keepSamples(samples, state.lastChangeAt, 3);
        assert.ok(kept.length <= 3);
        assert.deepEqual(planScale(state, kept, now), planScale(state, samples, now));
      }),
    );
  });
});
