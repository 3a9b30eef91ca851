// The kstatus binary answers as cli-utils documents its rules (pkg/kstatus/README.md and
// status.go), on agentry-shaped custom resources.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { judgeAll, type KStatus } from "./kstatus.ts";

const obj = (
  generation: number,
  observed: number | undefined,
  conditions: [string, string][],
  extra: Record<string, unknown> = {},
) => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name: "a", namespace: "n", generation, ...extra },
  status: {
    ...(observed !== undefined ? { observedGeneration: observed } : {}),
    conditions: conditions.map(([type, status]) => ({ type, status, reason: "R", message: "m" })),
  },
});

describe("kstatus (cli-utils, built from its Go module)", () => {
  const cases: [string, object, KStatus][] = [
    ["ready and observed", obj(2, 2, [["Ready", "True"]]), "Current"],
    [
      "stale observedGeneration, even when stalled",
      obj(3, 2, [
        ["Ready", "True"],
        ["Stalled", "True"],
      ]),
      "InProgress",
    ],
    ["not ready", obj(1, 1, [["Ready", "False"]]), "InProgress"],
    [
      "reconciling",
      obj(1, 1, [
        ["Ready", "True"],
        ["Reconciling", "True"],
      ]),
      "InProgress",
    ],
    [
      "stalled",
      obj(1, 1, [
        ["Ready", "False"],
        ["Stalled", "True"],
      ]),
      "Failed",
    ],
    [
      "false abnormal conditions are fine",
      obj(1, 1, [
        ["Ready", "True"],
        ["Stalled", "False"],
        ["Reconciling", "False"],
      ]),
      "Current",
    ],
    ["no conditions at all", obj(1, undefined, []), "Current"],
    [
      "being deleted",
      obj(1, 1, [["Ready", "True"]], { deletionTimestamp: "2026-01-01T00:00:00Z" }),
      "Terminating",
    ],
  ];
  const judged = judgeAll(cases.map(([, o]) => o));
  for (const [i, [name, , want]] of cases.entries())
    it(`${name} → ${want}`, () => assert.equal(judged[i]!.status, want));

  it("says why an object is not Current", () => {
    const [stalled] = judgeAll([obj(1, 1, [["Stalled", "True"]])]);
    assert.deepEqual(stalled, { status: "Failed", why: "m" });
  });
});
