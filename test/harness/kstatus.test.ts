import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { judge, type KStatus } from "./kstatus.ts";

const obj = (generation: number, observed: number | undefined, conditions: [string, string][]) => ({
  metadata: { generation },
  status: {
    ...(observed !== undefined ? { observedGeneration: observed } : {}),
    conditions: conditions.map(([type, status]) => ({ type, status, reason: "R", message: "m" })),
  },
});

describe("judge (kstatus rules for custom resources)", () => {
  const cases: [string, ReturnType<typeof obj>, KStatus][] = [
    ["ready and observed", obj(2, 2, [["Ready", "True"]]), "Current"],
    ["stale observedGeneration", obj(3, 2, [["Ready", "True"]]), "InProgress"],
    ["no status yet", obj(1, undefined, []), "InProgress"],
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
      "stalled wins over everything",
      obj(2, 1, [
        ["Ready", "True"],
        ["Stalled", "True"],
      ]),
      "Failed",
    ],
    [
      "stalled false is fine",
      obj(1, 1, [
        ["Ready", "True"],
        ["Stalled", "False"],
        ["Reconciling", "False"],
      ]),
      "Current",
    ],
  ];
  for (const [name, o, want] of cases) it(`${name} → ${want}`, () => assert.equal(judge(o).status, want));
});
