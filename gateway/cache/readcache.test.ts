import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkspaceKind } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { cached } from "./kindcache.ts";
import { ReadCache, type ListQuery } from "./readcache.ts";

const workspace = (
  ns: string,
  name: string,
  rv: number,
  labels: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: { namespace: ns, name, uid: `uid-${name}`, resourceVersion: String(rv), labels },
  spec: {},
});

/** A read cache of Workspaces listed at rv 10 holding a/w1..w3 and b/x. */
function filled(): ReadCache {
  const rc = new ReadCache([WorkspaceKind], { waitMs: 50 });
  const kc = rc.kind("Workspace")!;
  kc.progress("10", true);
  for (const [i, o] of [
    workspace("a", "w1", 11, { team: "x" }),
    workspace("a", "w2", 12),
    workspace("a", "w3", 13, { team: "x" }),
    workspace("b", "x", 14),
  ].entries()) {
    kc.put(cached(o));
    kc.progress(String(11 + i), false);
  }
  return rc;
}

const queries: [string | undefined, ListQuery][] = [
  ["a", {}],
  ["a", { limit: 2 }],
  ["a", { labelSelector: "team=x" }],
  ["a", { labelSelector: "team in (" }],
  ["a", { continue: "not a token" }],
  [undefined, {}],
  [undefined, { limit: 1 }],
  ["c", {}],
];

describe("ReadCache: answers at once", () => {
  it("gives what the waiting reads give, once the cache holds the gateway's writes", async () => {
    const rc = filled();
    for (const [ns, q] of queries) {
      const now = rc.listNow(WorkspaceKind, ns, q);
      assert.ok(now, `${ns} ${JSON.stringify(q)}`);
      assert.deepEqual(now, await rc.list(WorkspaceKind, ns, q), `${ns} ${JSON.stringify(q)}`);
    }
    for (const [ns, name] of [
      ["a", "w1"],
      ["b", "x"],
      ["a", "missing"],
    ] as const)
      assert.deepEqual(rc.getNow(WorkspaceKind, ns, name), await rc.get(WorkspaceKind, ns, name));
    assert.equal(rc.getNow(WorkspaceKind, "a", "missing")?.ok, false);
  });

  it("gives nothing at once while a write through the gateway is not in (the waiting read waits for it)", async () => {
    const rc = filled();
    const kc = rc.kind("Workspace")!;
    const w4 = workspace("a", "w4", 20);
    rc.wrote("Workspace", w4);
    assert.equal(rc.getNow(WorkspaceKind, "a", "w1"), undefined);
    assert.equal(rc.listNow(WorkspaceKind, "a", {}), undefined);
    // A query the cache cannot read is refused at once all the same: no wait for it.
    assert.deepEqual(rc.listNow(WorkspaceKind, "a", { labelSelector: "team in (" }), {
      ok: false,
      reason: "selector",
    });
    const waiting = rc.list(WorkspaceKind, "a", {});
    kc.put(cached(w4));
    kc.progress("20", false);
    const listed = await waiting;
    assert.ok(
      listed.ok && JSON.parse(listed.body.toString()).items.some((o: KubeObject) => o.metadata.name === "w4"),
    );
    assert.deepEqual(rc.listNow(WorkspaceKind, "a", {}), listed);
  });

  it("gives nothing at once before the first list", () => {
    const rc = new ReadCache([WorkspaceKind]);
    assert.equal(rc.getNow(WorkspaceKind, "a", "w1"), undefined);
    assert.equal(rc.listNow(WorkspaceKind, "a", {}), undefined);
  });
});
