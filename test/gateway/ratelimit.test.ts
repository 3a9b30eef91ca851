// Per-identity rate limits: in process, and shared by replicas through the real Redis.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { Redis } from "ioredis";
import { silentLogger } from "../../lib/log.ts";
import { MemoryRateLimiter, RedisRateLimiter } from "../../gateway/ratelimit.ts";
import { serviceUrl } from "../harness/cluster.ts";
import { startGateway } from "./harness.ts";

describe("gateway rate limits", () => {
  it("answers 429 problem+json with Retry-After once an identity's burst is spent", async (t) => {
    const gw = await startGateway(t, { limiter: new MemoryRateLimiter({ rate: 0.01, burst: 2 }) });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await gw.call("GET", "/v1/namespaces/default/workspaces")).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    const r = await gw.call("GET", "/v1/namespaces/default/workspaces");
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) >= 1);
    assert.match(r.headers.get("content-type") ?? "", /problem\+json/);
  });

  it("shares one bucket per identity across replicas through Redis", async (t) => {
    const url = serviceUrl(t, "redis");
    if (!url) return;
    const a = new Redis(url);
    const b = new Redis(url);
    t.after(() => {
      a.disconnect();
      b.disconnect();
    });
    const prefix = `test:${randomBytes(4).toString("hex")}:`;
    const opts = { rate: 0.01, burst: 3 };
    const one = new RedisRateLimiter(a, opts, silentLogger(), prefix);
    const two = new RedisRateLimiter(b, opts, silentLogger(), prefix);
    const got = [];
    for (const l of [one, two, one, two]) got.push((await l.take("alice")).allowed);
    assert.deepEqual(got, [true, true, true, false]);
    assert.equal((await two.take("bob")).allowed, true, "another identity has its own bucket");
    const refused = await one.take("alice");
    assert.ok(refused.retryAfterMs > 0);
  });
});
