import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeInformer } from "../../test/harness/fakekube.ts";
import { CacheIndex, inNamespace } from "./cacheindex.ts";
import type { KubeObject } from "./client.ts";

const pod = (name: string, owner?: string, namespace = "ns"): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, ...(owner ? { labels: { owner } } : {}) },
});
const names = (objs: KubeObject[]) => objs.map((o) => o.metadata.name).sort();

describe("CacheIndex", () => {
  it("finds the cached objects by the value they name, as adds, updates and deletes change them", () => {
    const informer = new FakeInformer("Pod", [pod("seeded", "a")]);
    const index = new CacheIndex(informer, (o) => inNamespace(o, o.metadata.labels?.["owner"]));
    assert.deepEqual(names(index.get("ns/a")), ["seeded"], "what the cache held before the index");
    informer.set(pod("p1", "a"));
    informer.set(pod("p2", "b"));
    informer.set(pod("p3"));
    informer.set(pod("p4", "a", "other"));
    assert.deepEqual(names(index.get("ns/a")), ["p1", "seeded"]);
    assert.deepEqual(names(index.get("ns/b")), ["p2"]);
    assert.deepEqual(names(index.get("other/a")), ["p4"]);
    informer.set(pod("p1", "b")); // moved to another owner
    assert.deepEqual(names(index.get("ns/a")), ["seeded"]);
    assert.deepEqual(names(index.get("ns/b")), ["p1", "p2"]);
    informer.remove("ns", "p2");
    assert.deepEqual(names(index.get("ns/b")), ["p1"]);
    assert.deepEqual(index.get("ns/nobody"), []);
  });
});
