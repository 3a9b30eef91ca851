import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeClient } from "../../lib/kube/client.ts";
import { MemoryRateLimiter } from "../ratelimit.ts";
import { createAuthenticator } from "./authenticate.ts";
import { TokenReviewer, type ReviewResult } from "./tokenreview.ts";
import { hashToken } from "./tokens.ts";

/** The apiserver's TokenReview: "good-*" tokens are alice's; counts the reviews it answers. */
class FakeApiserver {
  reviews = 0;
  delayMs = 0;
  async request(_method: string, _path: string, o: { body: { spec: { token: string } } }) {
    this.reviews++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const good = o.body.spec.token.startsWith("good-");
    return { status: good ? { authenticated: true, user: { username: "alice", groups: ["dev"] } } : {} };
  }
}

function reviewer(options: ConstructorParameters<typeof TokenReviewer>[1] = {}) {
  const api = new FakeApiserver();
  let now = 0;
  const results: ReviewResult[] = [];
  const r = new TokenReviewer(api as unknown as KubeClient, {
    now: () => now,
    onReview: (x) => results.push(x),
    ...options,
  });
  return { r, api, results, advance: (ms: number) => (now += ms) };
}

describe("TokenReviewer", () => {
  it("remembers a refused token for negativeTtlMs, then asks again", async () => {
    const { r, api, advance } = reviewer({ negativeTtlMs: 5000 });
    assert.equal(await r.review("bad-1"), undefined);
    assert.equal(await r.review("bad-1"), undefined);
    assert.equal(api.reviews, 1, "the second answer came from the cache");
    advance(5000);
    await r.review("bad-1");
    assert.equal(api.reviews, 2, "expired");
  });

  it("remembers an accepted token for ttlMs", async () => {
    const { r, api, advance } = reviewer({ ttlMs: 10_000 });
    assert.equal((await r.review("good-1"))?.user, "alice");
    advance(9_999);
    assert.equal((await r.review("good-1"))?.via, "tokenreview");
    assert.equal(api.reviews, 1);
  });

  it("stays bounded, and a flood of bad tokens does not push out the good ones", async () => {
    const { r, api } = reviewer({ maxEntries: 50 });
    await r.review("good-1");
    for (let i = 0; i < 500; i++) await r.review(`bad-${i}`);
    assert.deepEqual(r.cached, { accepted: 1, refused: 50 });
    const before = api.reviews;
    assert.equal((await r.review("good-1"))?.user, "alice");
    assert.equal(api.reviews, before, "still cached");
  });

  it("sends one review for concurrent requests with the same token", async () => {
    const { r, api } = reviewer();
    api.delayMs = 20;
    const answers = await Promise.all(Array.from({ length: 10 }, () => r.review("good-2")));
    assert.equal(api.reviews, 1);
    assert.ok(answers.every((a) => a?.user === "alice"));
  });

  it("reports each review's outcome", async () => {
    const { r, results } = reviewer();
    await r.review("good-3");
    await r.review("bad-3");
    await r.review("bad-3");
    assert.deepEqual(results, ["authenticated", "rejected"]);
  });
});

describe("createAuthenticator: TokenReviews per address", () => {
  const setup = (burst: number) => {
    const { r, api } = reviewer();
    const gate = new MemoryRateLimiter({ rate: 0.001, burst });
    const authenticate = createAuthenticator({
      tokens: () => new Map([[hashToken("static-1"), { user: "bob", groups: [], via: "token" as const }]]),
      tokenReview: r,
      reviewGate: (address) => gate.take(address),
    });
    return { authenticate, api };
  };
  const status = (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (err: { status?: number }) => err.status ?? 500,
    );

  it("answers 429 without asking the apiserver once an address has used its reviews", async () => {
    const { authenticate, api } = setup(3);
    const got = [];
    for (let i = 0; i < 10; i++)
      got.push(await status(authenticate(`Bearer bad-${i}`, { address: "10.0.0.1" })));
    assert.deepEqual(got, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    assert.equal(api.reviews, 3);
  });

  const cases: [string, string, string, number][] = [
    ["a static token needs no review", "Bearer static-1", "10.0.0.1", 200],
    ["a token refused lately is answered from the cache", "Bearer bad-0", "10.0.0.1", 401],
    ["a token accepted lately is answered from the cache", "Bearer good-0", "10.0.0.1", 200],
    ["another address has its own reviews", "Bearer bad-new", "10.0.0.2", 401],
    ["a new token from the spent address", "Bearer good-new", "10.0.0.1", 429],
  ];
  it("counts only tokens that would need a review", async () => {
    const { authenticate, api } = setup(2);
    await status(authenticate("Bearer bad-0", { address: "10.0.0.1" }));
    await status(authenticate("Bearer good-0", { address: "10.0.0.1" }));
    const reviews = api.reviews;
    for (const [what, header, address, want] of cases)
      assert.equal(await status(authenticate(header, { address })), want, what);
    assert.equal(api.reviews, reviews + 1, "only the other address's new token was reviewed");
  });
});

describe("createAuthenticator: the identity at once (now)", () => {
  const bob = { user: "bob", groups: [], via: "token" as const };
  const make = (allowAnonymous: boolean) => {
    const { r } = reviewer();
    const authenticate = createAuthenticator({
      tokens: () => new Map([[hashToken("static-1"), bob]]),
      tokenReview: r,
      allowAnonymous,
    });
    return { authenticate, now: authenticate.now! };
  };

  it("knows static tokens, tokens reviewed lately and anonymous callers where allowed, as the authenticator answers them", async () => {
    const { authenticate, now } = make(true);
    assert.equal(now("Bearer static-1"), bob);
    assert.equal(now("bearer   static-1  "), bob, "the scheme in any case, spaces around the token");
    assert.equal(now(undefined)?.via, "anonymous");
    assert.equal(now("Bearer good-1"), undefined, "not reviewed yet");
    assert.equal((await authenticate("Bearer good-1"))?.user, "alice");
    assert.equal(now("Bearer good-1")?.user, "alice", "reviewed lately");
    for (const header of ["Bearer static-1", "Bearer good-1", undefined])
      assert.deepEqual(now(header), await authenticate(header));
  });

  it("knows no identity for what the authenticator refuses or has yet to review", async () => {
    const { authenticate, now } = make(false);
    for (const header of [undefined, "Basic abc", "Bearer", "Bearer a b", "Bearer bad-1"]) {
      assert.equal(now(header), undefined, String(header));
      await assert.rejects(authenticate(header), { status: 401 }, String(header));
      assert.equal(now(header), undefined, `${String(header)}, refused lately`);
    }
  });
});
