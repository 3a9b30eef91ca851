import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonBytes, ObjectStore } from "./objects.ts";
import { parseSelector } from "./selector.ts";

const all = parseSelector(undefined);

function store(keys: string[]): ObjectStore {
  const s = new ObjectStore();
  keys.forEach((key, i) => {
    const [ns, name] = key.split("/") as [string, string];
    s.put(ns, {
      name,
      uid: key,
      rv: i + 1,
      labels: { n: String(i % 2) },
      json: jsonBytes(JSON.stringify(key)),
    });
  });
  return s;
}

const names = (items: Buffer[]) => items.map((j) => JSON.parse(j.toString()) as string);

describe("ObjectStore", () => {
  // Inserted out of order; "a-b" sorts before "a" across namespaces ("a-b/" < "a/"), as etcd keys do.
  const keys = ["b/y", "a/z", "a-b/x", "a/a", "b/a", "a/m"];

  it("lists a namespace by name and every namespace by key", () => {
    const s = store(keys);
    assert.deepEqual(names(s.page("a", all, undefined).items), ["a/a", "a/m", "a/z"]);
    assert.deepEqual(names(s.page(undefined, all, undefined).items), [
      "a-b/x",
      "a/a",
      "a/m",
      "a/z",
      "b/a",
      "b/y",
    ]);
    assert.deepEqual(s.namespaces(), ["a-b", "a", "b"]);
    assert.equal(s.all("a").toString(), '["a/a","a/m","a/z"]');
    assert.equal(s.all("nope").toString(), "[]");
  });

  it("pages with a limit and goes on after the last key (the apiserver's start key)", () => {
    const s = store(keys);
    const p1 = s.page(undefined, all, 2);
    assert.deepEqual(names(p1.items), ["a-b/x", "a/a"]);
    assert.equal(p1.more, "a/a");
    assert.equal(p1.remaining, 4, "the apiserver's remainingItemCount: every key after the page");
    const p2 = s.page(undefined, all, 3, `${p1.more}\u0000`);
    assert.deepEqual(names(p2.items), ["a/m", "a/z", "b/a"]);
    assert.equal(p2.remaining, 1);
    const p3 = s.page(undefined, all, 3, `${p2.more}\u0000`);
    assert.deepEqual(names(p3.items), ["b/y"]);
    assert.equal(p3.more, undefined);
    assert.equal(p3.remaining, 0);
    const inNs = s.page("a", all, 1, "a\u0000");
    assert.deepEqual(names(inNs.items), ["a/m"]);
    assert.equal(inNs.more, "m");
    assert.equal(inNs.remaining, 1, "within the namespace only");
  });

  it("says more only when matching objects remain", () => {
    const s = store(keys); // labels n=0 for the 1st, 3rd, 5th inserted: b/y, a-b/x, b/a
    const even = parseSelector("n=0");
    const p = s.page(undefined, even, 2);
    assert.deepEqual(names(p.items), ["a-b/x", "b/a"]);
    assert.equal(p.more, "b/a");
    assert.deepEqual(names(s.page(undefined, even, 3).items), ["a-b/x", "b/a", "b/y"]);
    assert.equal(s.page(undefined, even, 3).more, undefined);
  });

  it("replaces, removes, and counts objects and bytes", () => {
    const s = store(keys);
    assert.equal(s.size, 6);
    const bytes = s.bytes;
    s.put("a", { name: "m", uid: "a/m", rv: 9, labels: undefined, json: jsonBytes('"a/m, longér"') });
    assert.equal(s.size, 6);
    assert.equal(
      s.bytes,
      bytes + Buffer.byteLength('"a/m, longér"') - '"a/m"'.length,
      "bytes, not characters",
    );
    assert.equal(s.get("a", "m")?.rv, 9);
    assert.equal(s.all("a").toString(), '["a/a","a/m, longér","a/z"]');
    s.remove("a-b", "x");
    s.remove("a-b", "x");
    assert.equal(s.size, 5);
    assert.deepEqual(s.namespaces(), ["a", "b"]);
    assert.equal(s.get("a-b", "x"), undefined);
  });
});
