import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { AgentRuntimeReason } from "../../../api/v1alpha1/index.ts";
import { FIRST_STATUS_WAIT_MS, FirstStatus } from "./firststatus.ts";

const status = (phase: string, reason: string): AgentRuntime["status"] =>
  ({ phase, conditions: [{ type: "Ready", status: "False", reason }] }) as AgentRuntime["status"];
const agent = (uid: string, written?: AgentRuntime["status"]) =>
  ({
    metadata: { name: "a", namespace: "n", uid },
    spec: { image: "x" },
    ...(written ? { status: written } : {}),
  }) as AgentRuntime;

describe("statuses that only report progress", () => {
  it("waits while it would only report progress, by the injected clock, for FIRST_STATUS_WAIT_MS at most", () => {
    let at = 1_000_000;
    const first = new FirstStatus(() => new Date(at));
    const starting = status("Starting", AgentRuntimeReason.NotReady);
    assert.equal(first.wait(agent("u"), starting, false), FIRST_STATUS_WAIT_MS);
    at += 2_000;
    assert.equal(first.wait(agent("u"), starting, false), FIRST_STATUS_WAIT_MS - 2_000);
    at += FIRST_STATUS_WAIT_MS - 2_000;
    assert.equal(first.wait(agent("u"), starting, false), undefined, "waited long enough: written");
  });

  for (const [what, ar, st, troubled] of [
    ["something worth saying", agent("u"), status("Error", AgentRuntimeReason.ImagePullError), false],
    ["a Pod being replaced", agent("u"), status("Starting", AgentRuntimeReason.NotReady), true],
    [
      "progress after a Ready status (the Pod stopped being ready)",
      agent("u", {
        phase: "Ready",
        conditions: [{ type: "Ready", status: "True", reason: "Ready" }],
      } as never),
      status("Starting", AgentRuntimeReason.NotReady),
      false,
    ],
    [
      "progress after an error",
      agent("u", status("Error", AgentRuntimeReason.ImagePullError)),
      status("Starting", AgentRuntimeReason.NotReady),
      false,
    ],
  ] as const)
    it(`writes at once: ${what}`, () => {
      const first = new FirstStatus(() => new Date(0));
      assert.equal(first.wait(ar, st, troubled), undefined);
    });

  it("waits over a status that only reported progress too (a replacement on its way)", () => {
    const first = new FirstStatus(() => new Date(0));
    const replacing = agent("u", status("Starting", AgentRuntimeReason.PodPending));
    assert.equal(
      first.wait(replacing, status("Pending", AgentRuntimeReason.PodPending), false),
      FIRST_STATUS_WAIT_MS,
    );
  });

  const served = (ready: { reason: string }, progress?: { type: string; status: string; reason: string }) =>
    ({
      phase: "Ready",
      conditions: [{ type: "Ready", status: "True", ...ready }, ...(progress ? [progress] : [])],
    }) as AgentRuntime["status"];
  /** An AgentRuntime at `generation` whose stored status is of `observed`. */
  const atGeneration = (ar: AgentRuntime, generation: number, observed: number) =>
    ({
      ...ar,
      metadata: { ...ar.metadata, generation },
      status: { ...ar.status, observedGeneration: observed },
    }) as AgentRuntime;
  /** Ready for generation 1, and the spec changed since. */
  const wasReady = atGeneration(agent("u", served({ reason: "AgentReady" })), 2, 1);
  const replacing = served(
    { reason: AgentRuntimeReason.Replacing },
    { type: "Reconciling", status: "True", reason: AgentRuntimeReason.Replacing },
  );

  it("waits with a replacement on its way over the Ready status of the Pod that serves", () => {
    let at = 0;
    const first = new FirstStatus(() => new Date(at));
    assert.equal(first.wait(wasReady, replacing, false), FIRST_STATUS_WAIT_MS);
    at += FIRST_STATUS_WAIT_MS;
    assert.equal(first.wait(wasReady, replacing, false), undefined, "the replacement takes long: written");
  });

  for (const [what, ar, st, troubled] of [
    ["a replacement with none serving", wasReady, replacing, true],
    [
      "a replacement whose new Pod is in trouble",
      wasReady,
      served(
        { reason: AgentRuntimeReason.Replacing },
        { type: "Stalled", status: "True", reason: AgentRuntimeReason.ImagePullError },
      ),
      false,
    ],
    [
      "a replacement over a status that did not say Ready",
      atGeneration(agent("u", status("Error", "CrashLoop")), 2, 1),
      replacing,
      false,
    ],
    [
      "a replacement with no spec change (the stored status is of this generation)",
      atGeneration(agent("u", served({ reason: "AgentReady" })), 1, 1),
      replacing,
      false,
    ],
    [
      "a replacement over a status that said the new Pod was stalled",
      atGeneration(
        agent(
          "u",
          served(
            { reason: AgentRuntimeReason.Replacing },
            { type: "Stalled", status: "True", reason: AgentRuntimeReason.ImagePullError },
          ),
        ),
        3,
        2,
      ),
      replacing,
      false,
    ],
  ] as const)
    it(`writes at once: ${what}`, () => {
      const first = new FirstStatus(() => new Date(0));
      assert.equal(first.wait(ar, st, troubled), undefined);
    });
});
