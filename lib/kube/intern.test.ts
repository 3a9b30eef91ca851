import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { KubeObject } from "./client.ts";
import { StringPool } from "./intern.ts";

const pod = (name: string): KubeObject =>
  JSON.parse(
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "team-a",
        uid: `uid-${name}`,
        resourceVersion: "12",
        creationTimestamp: "2026-12-02T03:44:05Z",
        labels: { "app.kubernetes.io/managed-by": "agentry", "agentry.dev/agent": name },
        annotations: { "agentry.dev/spec-hash": "0123456789abcdef" },
        ownerReferences: [{ apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime", name, uid: "u" }],
      },
      spec: { nodeName: "kwok-node-1" },
      status: {
        phase: "Running",
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-12-02T03:44:06Z" }],
      },
    }),
  ) as KubeObject;

describe("StringPool", () => {
  it("leaves every object equal to what was parsed", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (status, ns) => {
        const o = {
          apiVersion: "v1",
          kind: "X",
          metadata: { name: "n", namespace: ns },
          status,
        } as KubeObject;
        const before = structuredClone(o);
        new StringPool().object(o);
        assert.deepEqual(o, before);
      }),
    );
    const o = pod("p1");
    const before = structuredClone(o);
    new StringPool().object(o);
    assert.deepEqual(o, before);
  });

  it("keeps one entry per repeated value, none for unique names and uids", () => {
    const pool = new StringPool();
    pool.object(pod("p1"));
    const first = pool.size;
    for (let i = 2; i <= 50; i++) pool.object(pod(`p${i}`));
    // Each new pod adds only its own label value (the agent's name); namespace, kinds,
    // managed-by, hash, owner, node, phase, condition and times are shared.
    assert.equal(pool.size, first + 49);
  });

  it("does not pool long strings, and empties itself past its bound", () => {
    const pool = new StringPool(3);
    assert.equal(pool.intern("x".repeat(300)), "x".repeat(300));
    assert.equal(pool.size, 0);
    for (const s of ["a", "b", "c"]) pool.intern(s);
    assert.equal(pool.size, 3);
    assert.equal(pool.intern("d"), "d");
    assert.equal(pool.size, 1);
    assert.equal(pool.intern(42), 42);
  });
});
