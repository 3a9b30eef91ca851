import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../lib/kube/client.ts";
import type { WatchEventType } from "../../lib/kube/watch.ts";
import { cached, KindCache } from "./kindcache.ts";

const obj = (
  ns: string,
  name: string,
  rv: number,
  extra: Partial<KubeObject["metadata"]> = {},
): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: {
    namespace: ns,
    name,
    uid: `uid-${name}`,
    resourceVersion: String(rv),
    managedFields: [{}],
    ...extra,
  },
  spec: {},
});

function listed(at: number): KindCache {
  const c = new KindCache({ apiVersion: "agentry.dev/v1alpha1", kind: "Workspace" });
  c.progress(String(at), true);
  return c;
}
/** What the informer does with a watch event: the object (managedFields dropped) projected, then the progress. */
function event(c: KindCache, type: WatchEventType, o: KubeObject): void {
  delete o.metadata.managedFields;
  if (type === "ADDED" || type === "MODIFIED") c.put(cached(o));
  if (type === "DELETED") c.remove(cached(o));
  c.progress(o.metadata.resourceVersion ?? "", false);
}

describe("KindCache", () => {
  it("keeps each object as the JSON the gateway sends (managedFields left out)", () => {
    const c = listed(10);
    event(c, "ADDED", obj("a", "w", 11));
    const e = c.store.get("a", "w")!;
    assert.equal(e.rv, 11);
    assert.deepEqual(JSON.parse(e.json.toString()), {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { namespace: "a", name: "w", uid: "uid-w", resourceVersion: "11" },
      spec: {},
    });
    event(c, "DELETED", obj("a", "w", 12));
    assert.equal(c.store.size, 0);
    assert.equal(c.resourceVersion, 12);
  });

  it("is caught up once it holds the gateway's writes; waits for them, bounded", async () => {
    const c = listed(10);
    assert.equal(await c.caughtUp(0), true);
    c.wrote(obj("a", "w", 15));
    assert.equal(await c.caughtUp(0), false, "the write is not in yet");
    assert.equal(await c.caughtUp(20), false, "still not, after waiting");
    const waiting = c.caughtUp(5_000);
    event(c, "ADDED", obj("a", "w", 15));
    assert.equal(await waiting, true);
    // A bookmark moves the cache on without a change.
    event(c, "BOOKMARK", obj("", "", 20));
    assert.equal(c.resourceVersion, 20);
    assert.equal(c.unchangedSince("a", 15), true);
  });

  it("after a deletion, waits until the object has left the cache", async () => {
    const c = listed(10);
    event(c, "ADDED", obj("a", "w", 11));
    event(c, "ADDED", obj("a", "other", 12));
    // The apiserver answers the DELETE of a custom resource with a Status naming the uid.
    c.deleted("a", "w", { metadata: {}, details: { uid: "uid-w" } });
    assert.equal(await c.caughtUp(0), false);
    event(c, "DELETED", obj("a", "w", 13));
    assert.equal(await c.caughtUp(0), true);
    // Deleted and made again at once (another uid): the new one may stay.
    event(c, "ADDED", obj("a", "w", 14, { uid: "uid-w2" }));
    c.deleted("a", "w", { metadata: {}, details: { uid: "uid-w" } });
    assert.equal(await c.caughtUp(0), true);
    // Deleted while finalizers hold it: an update like any other.
    c.deleted("a", "other", obj("a", "other", 15, { deletionTimestamp: "2026-01-01T00:00:00Z" }));
    assert.equal(await c.caughtUp(0), false);
    event(c, "MODIFIED", obj("a", "other", 15, { deletionTimestamp: "2026-01-01T00:00:00Z" }));
    assert.equal(await c.caughtUp(0), true);
  });

  it("after a list, pages of earlier lists are not continued; what the list found changed counts as new", () => {
    const c = listed(10);
    event(c, "ADDED", obj("a", "w", 11));
    // The watch expired; the list again finds w gone (at an unknown resourceVersion) and x changed.
    c.remove(cached(obj("a", "w", 11)));
    assert.equal(c.unchangedSince("a", 11), false, "a changed after anything answered so far");
    c.put(cached(obj("b", "x", 12)));
    c.progress("20", true);
    assert.equal(c.resourceVersion, 20);
    assert.equal(c.unchangedSince("a", 11), false, "a page of the list before");
    assert.equal(c.unchangedSince("a", 20), true);
    assert.deepEqual(c.store.namespaces(), ["b"]);
  });

  it("knows whether a namespace is unchanged since a list's resourceVersion", () => {
    const c = listed(10);
    event(c, "ADDED", obj("a", "w", 11));
    event(c, "ADDED", obj("b", "w", 12));
    assert.equal(c.unchangedSince("a", 11), true);
    assert.equal(c.unchangedSince("a", 10), false, "a changed at 11");
    assert.equal(c.unchangedSince("c", 10), true);
    assert.equal(c.unchangedSince(undefined, 11), false, "b changed at 12");
    assert.equal(c.unchangedSince(undefined, 12), true);
    assert.equal(c.unchangedSince("a", 9), false, "before the list the cache holds");
    assert.equal(c.unchangedSince("a", 13), false, "past what the cache has seen");
  });

  it("is not synced before its first list; a non-decimal resourceVersion is never compared", async () => {
    const c = new KindCache({ apiVersion: "agentry.dev/v1alpha1", kind: "Workspace" });
    assert.equal(c.synced, false);
    assert.equal(await c.caughtUp(0), false);
    const l = listed(10);
    event(l, "ADDED", { ...obj("a", "w", 1), metadata: { namespace: "a", name: "w", resourceVersion: "x" } });
    assert.equal(l.store.size, 0);
    assert.equal(l.resourceVersion, 10);
  });
});
