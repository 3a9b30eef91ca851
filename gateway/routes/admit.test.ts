import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agent, fakeLookup, pipeline, workspace } from "../../lib/admission/fixtures.ts";
import { DEFAULT_POLICY, validate } from "../../lib/admission/index.ts";
import { problemBody } from "../problem.ts";
import { verdictProblem, warningHeader } from "./admit.ts";

describe("warningHeader", () => {
  const cases: [string, string][] = [
    ["spec.x: not set", '299 - "spec.x: not set"'],
    ['say "hi"', '299 - "say \\"hi\\""'],
    ["back\\slash", '299 - "back\\\\slash"'],
    ["3 × 4\nnext", '299 - "3 \\u00d7 4\\u000anext"'],
  ];
  for (const [text, want] of cases) it(JSON.stringify(text), () => assert.equal(warningHeader(text), want));
});

describe("verdictProblem", () => {
  const cases = [
    {
      name: "a missing fleet is 422 with the field",
      kind: "Workspace",
      object: workspace("w", { fleetRef: { name: "nope" } }),
      status: 422,
      paths: ["spec.fleetRef.name"],
    },
    {
      name: "a :latest image is 403",
      kind: "Pipeline",
      object: pipeline("p", { steps: [{ name: "s", image: "busybox:latest" }] }),
      status: 403,
      paths: ["spec.steps[0].image"],
    },
    {
      name: "two problems are two errors and one detail",
      kind: "Pipeline",
      object: pipeline("p", {
        steps: [
          { name: "s", agentRef: { name: "gone" } },
          { name: "t", image: "x" },
        ],
      }),
      status: 403,
      paths: ["spec.steps[0].agentRef.name", "spec.steps[1].image"],
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const v = await validate(
        c.kind,
        c.object,
        undefined,
        fakeLookup({ agents: [agent("a")] }),
        DEFAULT_POLICY,
      );
      assert.equal(v.allowed, false);
      const body = problemBody(verdictProblem(c.kind, v).init);
      assert.equal(body.status, c.status);
      assert.equal(body.detail, v.message, "the detail is the webhook's message, unchanged");
      const errors = body.errors as { path: string; message: string }[];
      assert.deepEqual(
        errors.map((e) => e.path),
        c.paths,
      );
      for (const e of errors) assert.ok(v.message.includes(`${e.path}: ${e.message}`), e.message);
      assert.equal(body.reason, "AdmissionDenied");
    });

  it("a verdict without problems (the check failed) has no errors member", () => {
    const body = problemBody(
      verdictProblem("Workspace", { allowed: false, code: 500, message: "could not check", warnings: [] })
        .init,
    );
    assert.equal(body.status, 500);
    assert.equal(body.detail, "could not check");
    assert.equal(body.errors, undefined);
  });
});
