import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addOps, applyDefaults, FLEET_LABEL } from "./defaults.ts";

describe("addOps", () => {
  const cases: { name: string; current: unknown; wanted: unknown; ops: unknown[] }[] = [
    { name: "nothing missing", current: { a: 1 }, wanted: { a: 1 }, ops: [] },
    {
      name: "a missing key",
      current: { a: 1 },
      wanted: { a: 1, b: 2 },
      ops: [{ op: "add", path: "/s/b", value: 2 }],
    },
    { name: "never changes a set value", current: { a: 1 }, wanted: { a: 5 }, ops: [] },
    {
      name: "nested",
      current: { a: {} },
      wanted: { a: { b: true } },
      ops: [{ op: "add", path: "/s/a/b", value: true }],
    },
    {
      name: "arrays element-wise",
      current: [{}, { x: 1 }],
      wanted: [{ y: 2 }, { x: 1 }],
      ops: [{ op: "add", path: "/s/0/y", value: 2 }],
    },
    {
      name: "escapes keys",
      current: {},
      wanted: { "a/b~c": 1 },
      ops: [{ op: "add", path: "/s/a~1b~0c", value: 1 }],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(addOps(c.current, c.wanted, "/s"), c.ops));
});

describe("applyDefaults", () => {
  it("adds the schema defaults of a SandboxFleet", () => {
    const ops = applyDefaults({ kind: "SandboxFleet", metadata: {}, spec: { template: { image: "x:1" } } });
    const byPath = Object.fromEntries(ops.map((o) => [o.path, o.value]));
    assert.equal(byPath["/spec/maxWorkspacesPerSandbox"], 32);
    assert.equal(byPath["/spec/warmEmpty"], 1);
    assert.deepEqual(byPath["/spec/pressure"], { cpu: 0.8, memory: 0.8 });
    assert.equal(byPath["/spec/template/port"], 8080);
    assert.equal(byPath["/spec/template/image"], undefined);
  });

  it("labels a Workspace with its fleet, creating the labels map if needed", () => {
    const ops = applyDefaults({
      kind: "Workspace",
      metadata: {},
      spec: { fleetRef: { name: "f" }, suspended: false, retain: false },
    });
    assert.deepEqual(ops, [
      { op: "add", path: "/metadata/labels", value: {} },
      { op: "add", path: "/metadata/labels/agentry.dev~1fleet", value: "f" },
    ]);
    const labelled = applyDefaults({
      kind: "Workspace",
      metadata: { labels: { [FLEET_LABEL]: "f" } },
      spec: { fleetRef: { name: "f" }, suspended: false, retain: false },
    });
    assert.deepEqual(labelled, []);
  });

  it("leaves a spec that fails its schema to validation", () => {
    assert.deepEqual(applyDefaults({ kind: "Pipeline", metadata: {}, spec: { steps: "nope" } }), []);
  });

  it("is idempotent: applying the defaults twice adds nothing the second time", () => {
    const spec = { image: "x:1" };
    const ops = applyDefaults({ kind: "AgentRuntime", metadata: {}, spec });
    const patched = {
      ...spec,
      ...Object.fromEntries(ops.map((o) => [o.path.replace("/spec/", ""), o.value])),
    };
    assert.ok(ops.length > 0);
    assert.deepEqual(applyDefaults({ kind: "AgentRuntime", metadata: {}, spec: patched }), []);
  });
});
