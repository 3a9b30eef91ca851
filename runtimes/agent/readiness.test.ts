import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Readiness } from "../../contracts/agent.ts";
import { readiness, type ReadinessInput } from "./readiness.ts";

const base: ReadinessInput = {
  modelProblem: undefined,
  workspaceProblem: undefined,
  workspace: undefined,
  stopping: false,
};

describe("readiness", () => {
  const cases: [string, Partial<ReadinessInput>, Readiness | RegExp][] = [
    ["ready without a workspace", {}, { status: "ready" }],
    ["ready once the workspace is found", { workspace: { name: "w", found: true } }, { status: "ready" }],
    [
      "model problem is an error",
      { modelProblem: "set the key" },
      { status: "error", reason: "set the key" },
    ],
    [
      "bad workspace URL is an error",
      { workspaceProblem: "bad url" },
      { status: "error", reason: "bad url" },
    ],
    [
      "workspace not yet on its sandbox: starting, with the last error",
      { workspace: { name: "w", found: false, lastError: "ECONNREFUSED" } },
      { status: "starting", reason: "waiting for workspace w on its sandbox: ECONNREFUSED" },
    ],
    [
      "the model error wins over starting",
      { modelProblem: "no key", workspace: { name: "w", found: false } },
      { status: "error", reason: "no key" },
    ],
    [
      "stopping wins over everything",
      { stopping: true, modelProblem: "x" },
      { status: "stopping", reason: "the agent is shutting down" },
    ],
  ];
  for (const [name, input, want] of cases)
    it(name, () => {
      const got = readiness({ ...base, ...input });
      assert.deepEqual(got, want);
      assert.deepEqual(Readiness.parse(got), got, "the answer fits the contract");
    });
});
