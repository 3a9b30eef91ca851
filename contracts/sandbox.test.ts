import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExecRequest, parseWorkspaceUrl, SandboxStatus, workspaceUrl } from "./sandbox.ts";

describe("sandbox contract", () => {
  for (const [base, id] of [
    ["http://10.0.0.7:8080", "team-a.ws"],
    ["http://127.0.0.1:41234", "ns.a-b.c"],
    ["https://sandbox.example:443/prefix", "x"],
  ] as const) {
    it(`a workspace URL reads back as its sandbox and id: ${base} ${id}`, () => {
      assert.deepEqual(parseWorkspaceUrl(workspaceUrl(base, id)), { baseUrl: base, id });
    });
  }

  for (const url of [
    "",
    "http://h:1",
    "http://h:1/workspaces/",
    "ftp://h/workspaces/x",
    "http://h:1/files/x",
  ]) {
    it(`"${url}" is not a workspace URL`, () => {
      assert.equal(parseWorkspaceUrl(url), undefined);
    });
  }

  it("the operator's workspace endpoint keeps its format", () => {
    assert.equal(workspaceUrl("http://10.0.0.9:8080", "ns.ws"), "http://10.0.0.9:8080/workspaces/ns.ws");
  });

  it("a status answer fits its schema", () => {
    const status = { cpu: 0.5, memory: 0, workspaces: 2, draining: false, maxWorkspaces: 32 };
    assert.deepEqual(SandboxStatus.parse(status), status);
    assert.equal(SandboxStatus.safeParse({ ...status, cpu: 1.5 }).success, false);
  });

  for (const [body, why] of [
    [{ command: [] }, "command.0: must name a program"],
    [{ command: [""] }, "command.0: must name a program"],
    [{ command: ["ls\0"] }, "command.0: must not contain NUL bytes"],
    [{ command: ["env"], env: { "A-B": "x" } }, "env.A-B: "],
  ] as const) {
    it(`exec request ${JSON.stringify(body)} is refused: ${why}`, () => {
      const result = ExecRequest.safeParse(body);
      assert.equal(result.success, false);
      const issues = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      assert.ok(issues.startsWith(why), issues);
    });
  }
});
