import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backoffDelay, planPod, type PodFacts, type PodPlanInput } from "./plan.ts";

const HASH = "h-now";
const base: PodPlanInput = {
  wantPod: true,
  pod: undefined,
  templateHash: HASH,
  workspaceProblem: false,
  backoff: undefined,
  now: 1_000_000,
  maxBackoffMs: 60_000,
};
const ours = (over: Partial<PodFacts> = {}): PodFacts => ({
  owned: true,
  stale: false,
  deleting: false,
  templateHash: HASH,
  phase: "Running",
  ...over,
});

describe("planPod", () => {
  it("creates a missing Pod, and says when it recreates one", () => {
    assert.deepEqual(planPod(base), { action: "create", recreate: false });
    assert.deepEqual(planPod({ ...base, backoff: { count: 2, notBefore: base.now } }), {
      action: "create",
      recreate: true,
    });
  });

  it("waits out the backoff before recreating", () => {
    assert.deepEqual(planPod({ ...base, backoff: { count: 1, notBefore: base.now + 700 } }), {
      action: "wait",
      ms: 700,
    });
  });

  it("starts no Pod while the workspace is not usable", () => {
    assert.deepEqual(planPod({ ...base, workspaceProblem: true }), { action: "none", replacing: false });
  });

  it("removes the Pod while suspended, once", () => {
    assert.deepEqual(planPod({ ...base, wantPod: false, pod: ours() }), {
      action: "remove",
      why: "suspended",
    });
    assert.deepEqual(planPod({ ...base, wantPod: false, pod: ours({ deleting: true }) }), {
      action: "none",
      replacing: false,
    });
    assert.deepEqual(planPod({ ...base, wantPod: false, pod: ours({ owned: false }) }), {
      action: "none",
      replacing: false,
    });
  });

  it("replaces a Pod of an older template, and waits while it goes", () => {
    assert.deepEqual(planPod({ ...base, pod: ours({ templateHash: "h-old" }) }), {
      action: "remove",
      why: "changed",
    });
    assert.deepEqual(planPod({ ...base, pod: ours({ deleting: true }) }), {
      action: "none",
      replacing: true,
    });
  });

  it("removes an earlier AgentRuntime's Pod, and never anyone else's", () => {
    assert.deepEqual(planPod({ ...base, pod: ours({ owned: false, stale: true }) }), {
      action: "remove",
      why: "stale",
    });
    assert.deepEqual(planPod({ ...base, pod: ours({ owned: false }) }), { action: "conflict" });
  });

  it("counts a Pod that ended and backs off 1 s, 2 s, 4 s ... up to the maximum", () => {
    assert.deepEqual(planPod({ ...base, pod: ours({ phase: "Failed" }) }), {
      action: "failed",
      phase: "Failed",
      count: 1,
      delayMs: 1000,
    });
    assert.deepEqual(
      planPod({ ...base, pod: ours({ phase: "Succeeded" }), backoff: { count: 3, notBefore: 0 } }),
      { action: "failed", phase: "Succeeded", count: 4, delayMs: 8000 },
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, 60_000)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000],
    );
  });

  const facts = fc.record<PodFacts>({
    owned: fc.boolean(),
    stale: fc.boolean(),
    deleting: fc.boolean(),
    templateHash: fc.constantFrom(HASH, "h-old", undefined),
    phase: fc.constantFrom("Pending", "Running", "Failed", "Succeeded", undefined),
  });
  const input = fc.record<PodPlanInput>({
    wantPod: fc.boolean(),
    pod: fc.option(facts, { nil: undefined }),
    templateHash: fc.constant(HASH),
    workspaceProblem: fc.boolean(),
    backoff: fc.option(
      fc.record({
        count: fc.integer({ min: 1, max: 40 }),
        notBefore: fc.integer({ min: 0, max: 2_000_000 }),
      }),
      { nil: undefined },
    ),
    now: fc.integer({ min: 0, max: 2_000_000 }),
    maxBackoffMs: fc.integer({ min: 1000, max: 300_000 }),
  });

  it("never deletes a Pod that is not this installation's", () => {
    fc.assert(
      fc.property(input, (i) => {
        const plan = planPod(i);
        if (plan.action === "remove" || plan.action === "failed")
          assert.ok(i.pod && (i.pod.owned || i.pod.stale), JSON.stringify({ i, plan }));
      }),
    );
  });

  it("creates only when there is no Pod, a Pod is wanted and the workspace is usable", () => {
    fc.assert(
      fc.property(input, (i) => {
        const plan = planPod(i);
        if (plan.action === "create") assert.ok(!i.pod && i.wantPod && !i.workspaceProblem);
        if (plan.action === "wait")
          assert.ok(plan.ms > 0 && i.backoff && plan.ms === i.backoff.notBefore - i.now);
      }),
    );
  });

  it("backs off within [1 s, maximum], never shorter than the time before", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1000, max: 600_000 }), (n, max) => {
        const d = backoffDelay(n, max);
        assert.ok(d >= 1000 && d <= max);
        assert.ok(backoffDelay(n + 1, max) >= d);
      }),
    );
  });
});
