import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agent, fakeLookup, fleet, NS, workspace } from "./fixtures.ts";
import { DEFAULT_POLICY, memoLookup, validate, type Lookup } from "./index.ts";

const failing: Lookup = {
  secretKeys: () => Promise.reject(new Error("apiserver unreachable")),
  workspace: () => Promise.reject(new Error("apiserver unreachable")),
  sandboxFleet: () => Promise.reject(new Error("apiserver unreachable")),
  agentRuntime: () => Promise.reject(new Error("apiserver unreachable")),
  workspacesOfFleet: () => Promise.reject(new Error("apiserver unreachable")),
};

describe("validate", () => {
  it("denies with code 500 and the cause when a rule throws", async () => {
    const v = await validate("Workspace", workspace("w"), undefined, failing, DEFAULT_POLICY);
    assert.equal(v.allowed, false);
    assert.equal(v.code, 500);
    assert.match(v.message, /could not check this Workspace: apiserver unreachable; try again/);
  });

  it("answers 403 when the lookup itself is forbidden (a caller who may not read the referenced object)", async () => {
    const forbidden = Object.assign(new Error('sandboxfleets "fleet" is forbidden'), { status: 403 });
    const lookup: Lookup = { ...fakeLookup(), sandboxFleet: () => Promise.reject(forbidden) };
    const v = await validate("Workspace", workspace("w"), undefined, lookup, DEFAULT_POLICY);
    assert.equal(v.allowed, false);
    assert.equal(v.code, 403);
    assert.match(v.message, /cannot check this Workspace: sandboxfleets "fleet" is forbidden/);
  });

  it("denies an unknown kind", async () => {
    const v = await validate("Gadget", undefined, undefined, fakeLookup(), DEFAULT_POLICY);
    assert.equal(v.allowed, false);
    assert.equal(v.code, 400);
  });

  it("allows metadata-only updates and objects being deleted without any lookup", async () => {
    const old = workspace("w");
    const relabelled = workspace("w", {}, { labels: { x: "y" } });
    assert.equal((await validate("Workspace", relabelled, old, failing, DEFAULT_POLICY)).allowed, true);
    const deleting = workspace("w", { suspended: true }, { deletionTimestamp: "2026-01-01T00:00:00Z" });
    assert.equal((await validate("Workspace", deleting, old, failing, DEFAULT_POLICY)).allowed, true);
  });

  it("runs the kind's rule", async () => {
    const v = await validate(
      "Workspace",
      workspace("w"),
      undefined,
      fakeLookup({ fleets: [fleet("fleet")] }),
      DEFAULT_POLICY,
    );
    assert.deepEqual(v, { allowed: true, code: 200, message: "", warnings: [] });
  });

  it("asks the lookup once per object", async () => {
    const source = fakeLookup({ secrets: { s: ["a", "b"] } });
    const env = ["a", "b", "a"].map((key, i) => ({
      name: `V${i}`,
      valueFrom: { secretKeyRef: { name: "s", key } },
    }));
    const v = await validate("AgentRuntime", agent("x", { env }), undefined, source, DEFAULT_POLICY);
    assert.equal(v.allowed, true, v.message);
    assert.equal(source.calls, 1);
    const memo = memoLookup(source);
    await Promise.all([memo.workspace(NS, "a"), memo.workspace(NS, "a"), memo.workspace(NS, "b")]);
    assert.equal(source.calls, 3);
  });
});
