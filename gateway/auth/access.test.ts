import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeClient } from "../../lib/kube/client.ts";
import { AccessCache } from "./access.ts";
import type { Identity } from "./identity.ts";

const alice: Identity = { user: "alice", groups: ["team"], via: "token" };

/** A client whose SubjectAccessReviews answer `allowed()` and are counted (and can be held). */
function reviews(allowed: () => boolean) {
  const asked: unknown[] = [];
  let hold: Promise<void> | undefined;
  const client = {
    request: async (_m: string, _p: string, o: { body: { spec: unknown } }) => {
      asked.push(o.body.spec);
      await hold;
      return { status: { allowed: allowed(), reason: "" } };
    },
  } as unknown as KubeClient;
  return {
    client,
    asked,
    holdWith: (p: Promise<void> | undefined) => {
      hold = p;
    },
  };
}

describe("AccessCache", () => {
  const q = { verb: "list", resource: "workspaces", namespace: "a" };

  it("remembers answers per caller and question for its TTL", async () => {
    let now = 0;
    const r = reviews(() => true);
    const cache = new AccessCache(r.client, { ttlMs: 5_000, now: () => now });
    await cache.review(alice, q);
    await cache.review(alice, q);
    await cache.review(alice, { ...q, namespace: "b" });
    await cache.review({ ...alice, groups: [] }, q);
    await cache.review(alice, { ...q, verb: "get", name: "w" });
    assert.equal(r.asked.length, 4);
    assert.deepEqual(r.asked[0], {
      user: "alice",
      groups: ["team", "system:authenticated"],
      resourceAttributes: { group: "agentry.dev", resource: "workspaces", verb: "list", namespace: "a" },
    });
    now = 5_000;
    await cache.review(alice, q);
    assert.equal(r.asked.length, 5, "asked again after the TTL");
  });

  it("forgets a namespace's answers, or all of them, when told RBAC changed", async () => {
    let allowed = true;
    const r = reviews(() => allowed);
    const cache = new AccessCache(r.client);
    await cache.review(alice, q);
    await cache.review(alice, { ...q, namespace: "b" });
    allowed = false;
    cache.invalidate("a");
    assert.equal((await cache.review(alice, q)).allowed, false, "a asked again");
    assert.equal((await cache.review(alice, { ...q, namespace: "b" })).allowed, true, "b remembered");
    cache.invalidate();
    assert.equal((await cache.review(alice, { ...q, namespace: "b" })).allowed, false);
  });

  it("asks once for concurrent questions; does not remember an answer asked across an invalidation", async () => {
    let allowed = true;
    const r = reviews(() => allowed);
    const cache = new AccessCache(r.client);
    let release: () => void = () => undefined;
    r.holdWith(new Promise<void>((resolve) => (release = resolve)));
    const both = Promise.all([cache.review(alice, q), cache.review(alice, q)]);
    cache.invalidate(); // a binding changed while the review was on its way
    release();
    assert.deepEqual(
      (await both).map((a) => a.allowed),
      [true, true],
    );
    assert.equal(r.asked.length, 1);
    r.holdWith(undefined);
    allowed = false;
    assert.equal((await cache.review(alice, q)).allowed, false, "the old answer was not kept");
  });

  it("remembers answers asked just after an invalidation only until the apiserver has settled", async () => {
    let now = 100_000;
    const r = reviews(() => true);
    const cache = new AccessCache(r.client, { ttlMs: 5_000, now: () => now });
    cache.invalidate();
    now += 200;
    await cache.review(alice, q);
    now += 700;
    await cache.review(alice, q);
    assert.equal(r.asked.length, 1, "remembered within the settling second");
    now += 200;
    await cache.review(alice, q);
    assert.equal(r.asked.length, 2, "asked again once it ended");
    now += 4_000;
    await cache.review(alice, q);
    assert.equal(r.asked.length, 2, "then remembered for the TTL");
  });

  it("keeps at most maxEntries answers, dropping the oldest", async () => {
    const r = reviews(() => true);
    const cache = new AccessCache(r.client, { maxEntries: 2 });
    for (const ns of ["a", "b", "c"]) await cache.review(alice, { ...q, namespace: ns });
    assert.equal(cache.size, 2);
    await cache.review(alice, { ...q, namespace: "a" });
    assert.equal(r.asked.length, 4, "a was dropped");
  });
});

describe("AccessCache.answerNow", () => {
  const q = { verb: "get", resource: "agentruntimes", namespace: "a", name: "r" };

  it("gives a remembered answer at once, counted as a hit; nothing (and no count) when it takes a review", async () => {
    let now = 0;
    const lookups: string[] = [];
    const r = reviews(() => true);
    const cache = new AccessCache(r.client, {
      ttlMs: 5_000,
      now: () => now,
      onLookup: (x) => lookups.push(x),
    });
    assert.equal(cache.answerNow(alice, q), undefined);
    assert.deepEqual(lookups, []);
    await cache.review(alice, q);
    assert.deepEqual(cache.answerNow(alice, q), { allowed: true, reason: "" });
    assert.deepEqual(
      cache.answerNow({ ...alice }, q),
      { allowed: true, reason: "" },
      "the same caller in another object",
    );
    assert.equal(cache.answerNow(alice, { ...q, name: "s" }), undefined, "another object");
    assert.equal(cache.answerNow({ ...alice, groups: ["other"] }, q), undefined, "other groups");
    assert.equal(cache.answerNow(alice, { ...q, verb: "list", name: undefined }), undefined, "another verb");
    assert.deepEqual(lookups, ["miss", "hit", "hit"]);
    now = 5_000;
    assert.equal(cache.answerNow(alice, q), undefined, "expired");
    assert.equal(r.asked.length, 1, "answerNow never asks");
  });

  it("forgets at once what an invalidation forgets", async () => {
    const r = reviews(() => true);
    const cache = new AccessCache(r.client);
    await cache.review(alice, q);
    cache.invalidate("b");
    assert.ok(cache.answerNow(alice, q), "another namespace's invalidation");
    cache.invalidate("a");
    assert.equal(cache.answerNow(alice, q), undefined);
  });
});
