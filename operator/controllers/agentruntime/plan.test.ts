import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { backoffDelay, planPod, type PodFacts, type PodPlan, type PodPlanInput } from "./plan.ts";

const HASH = "h-now";
const base: PodPlanInput = {
  wantPod: true,
  pod: undefined,
  others: [],
  templateHash: HASH,
  overlap: true,
  workspaceProblem: false,
  backoff: undefined,
  now: 1_000_000,
  maxBackoffMs: 60_000,
};
const ours = (over: Partial<PodFacts> = {}): PodFacts => ({
  name: `coder-${HASH}`,
  owned: true,
  stale: false,
  deleting: false,
  templateHash: HASH,
  phase: "Running",
  ready: true,
  ...over,
});
const old = (over: Partial<PodFacts> = {}): PodFacts =>
  ours({ name: "coder-h-old", templateHash: "h-old", ...over });
/** A plan with nothing about earlier Pods. */
const only = (action: Partial<PodPlan>): PodPlan =>
  ({ retire: undefined, replacing: false, serving: undefined, ...action }) as PodPlan;

describe("planPod", () => {
  it("creates a missing Pod, and says when it recreates one", () => {
    assert.deepEqual(planPod(base), only({ action: "create", recreate: false }));
    assert.deepEqual(
      planPod({ ...base, backoff: { count: 2, notBefore: base.now } }),
      only({ action: "create", recreate: true }),
    );
  });

  it("waits out the backoff before recreating", () => {
    assert.deepEqual(
      planPod({ ...base, backoff: { count: 1, notBefore: base.now + 700 } }),
      only({ action: "wait", ms: 700 }),
    );
  });

  it("starts no Pod while the workspace is not usable", () => {
    assert.deepEqual(planPod({ ...base, workspaceProblem: true }), only({ action: "none" }));
  });

  it("removes the Pods while suspended, once", () => {
    assert.deepEqual(
      planPod({ ...base, wantPod: false, pod: ours() }),
      only({ action: "remove", why: "suspended" }),
    );
    assert.deepEqual(
      planPod({ ...base, wantPod: false, pod: ours({ deleting: true }) }),
      only({ action: "none" }),
    );
    assert.deepEqual(
      planPod({ ...base, wantPod: false, pod: ours({ owned: false }) }),
      only({ action: "none" }),
    );
    assert.deepEqual(
      planPod({ ...base, wantPod: false, others: [old(), old({ name: "gone", deleting: true })] }),
      only({ action: "none", retire: { names: ["coder-h-old"], why: "suspended" } }),
    );
  });

  it("creates the new Pod beside the old one, which serves until the new one is Ready", () => {
    const others = [old()];
    assert.deepEqual(
      planPod({ ...base, others }),
      only({ action: "create", recreate: false, replacing: true, serving: "coder-h-old" }),
    );
    assert.deepEqual(
      planPod({ ...base, pod: ours({ phase: "Pending", ready: false }), others }),
      only({ action: "none", replacing: true, serving: "coder-h-old" }),
    );
    assert.deepEqual(
      planPod({ ...base, pod: ours(), others }),
      only({ action: "none", retire: { names: ["coder-h-old"], why: "replaced" } }),
    );
    // An old Pod that does not serve goes at once; one already going is left to go.
    assert.deepEqual(
      planPod({ ...base, others: [old({ ready: false }), old({ name: "older", deleting: true })] }),
      only({
        action: "create",
        recreate: false,
        replacing: true,
        retire: { names: ["coder-h-old"], why: "changed" },
      }),
    );
  });

  it("with the agent's own claim, deletes the old Pod first and creates the new one once it is gone", () => {
    const i = { ...base, overlap: false };
    assert.deepEqual(
      planPod({ ...i, others: [old()] }),
      only({ action: "none", replacing: true, retire: { names: ["coder-h-old"], why: "changed" } }),
    );
    assert.deepEqual(
      planPod({ ...i, others: [old({ deleting: true })] }),
      only({ action: "none", replacing: true }),
    );
    assert.deepEqual(planPod(i), only({ action: "create", recreate: false }));
  });

  it("removes an earlier AgentRuntime's Pod, and never anyone else's", () => {
    assert.deepEqual(
      planPod({ ...base, pod: ours({ owned: false, stale: true }) }),
      only({ action: "remove", why: "stale" }),
    );
    assert.deepEqual(planPod({ ...base, pod: ours({ owned: false }) }), only({ action: "conflict" }));
    assert.deepEqual(
      planPod({ ...base, others: [old({ owned: false })] }),
      only({ action: "create", recreate: false }),
    );
  });

  it("counts a Pod that ended and backs off 1 s, 2 s, 4 s ... up to the maximum", () => {
    assert.deepEqual(
      planPod({ ...base, pod: ours({ phase: "Failed" }) }),
      only({ action: "failed", phase: "Failed", count: 1, delayMs: 1000 }),
    );
    assert.deepEqual(
      planPod({ ...base, pod: ours({ phase: "Succeeded" }), backoff: { count: 3, notBefore: 0 } }),
      only({ action: "failed", phase: "Succeeded", count: 4, delayMs: 8000 }),
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, 60_000)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000],
    );
  });

  const facts = fc.record<PodFacts>({
    name: fc.constantFrom("a", "b", "c"),
    owned: fc.boolean(),
    stale: fc.boolean(),
    deleting: fc.boolean(),
    templateHash: fc.constantFrom(HASH, "h-old", undefined),
    phase: fc.constantFrom("Pending", "Running", "Failed", "Succeeded", undefined),
    ready: fc.boolean(),
  });
  const input: fc.Arbitrary<PodPlanInput> = fc.record({
    wantPod: fc.boolean(),
    pod: fc.option(facts, { nil: undefined }),
    others: fc.uniqueArray(facts, { selector: (f) => f.name, maxLength: 3 }),
    templateHash: fc.constant(HASH),
    overlap: fc.boolean(),
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

  it("never deletes a Pod that is not this installation's, nor one already going", () => {
    fc.assert(
      fc.property(input, (i) => {
        const plan = planPod(i);
        if (plan.action === "remove" || plan.action === "failed")
          assert.ok(i.pod && (i.pod.owned || i.pod.stale), JSON.stringify({ i, plan }));
        for (const name of plan.retire?.names ?? []) {
          const o = i.others.find((p) => p.name === name);
          assert.ok(o && o.owned && !o.deleting, JSON.stringify({ i, plan }));
        }
      }),
    );
  });

  it("creates only when there is no Pod, a Pod is wanted, the workspace is usable and the claim free", () => {
    fc.assert(
      fc.property(input, (i) => {
        const plan = planPod(i);
        if (plan.action === "create") {
          assert.ok(!i.pod && i.wantPod && !i.workspaceProblem);
          assert.ok(
            i.overlap || !i.others.some((o) => o.owned),
            "no new Pod beside an old one without overlap",
          );
        }
        if (plan.action === "wait")
          assert.ok(plan.ms > 0 && i.backoff && plan.ms === i.backoff.notBefore - i.now);
      }),
    );
  });

  it("keeps at most one earlier Pod, a Ready one, and only until the new one is Ready", () => {
    fc.assert(
      fc.property(input, (i) => {
        const plan = planPod(i);
        const kept = i.others.filter((o) => o.owned && !o.deleting && !plan.retire?.names.includes(o.name));
        assert.ok(kept.length <= 1, JSON.stringify({ i, plan }));
        if (kept.length === 1) {
          assert.equal(plan.serving, kept[0]!.name);
          assert.ok(kept[0]!.ready && i.overlap && i.wantPod);
          assert.ok(!(i.pod?.owned && !i.pod.deleting && i.pod.ready && i.pod.templateHash === HASH));
        } else assert.equal(plan.serving, undefined);
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
