// The gateway's backing services are real servers: PostgreSQL through pg and Redis through
// ioredis, reached at the URLs test/run.ts (or .ci/run) provides.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { Redis } from "ioredis";
import { serviceUrl } from "../harness/cluster.ts";

describe("test services", () => {
  it("PostgreSQL answers SQL", async (t) => {
    const url = serviceUrl(t, "postgres");
    if (!url) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const res = await client.query<{ v: string; n: number }>("select version() as v, 40 + 2 as n");
      assert.match(res.rows[0]!.v, /^PostgreSQL \d+/);
      assert.equal(res.rows[0]!.n, 42);
    } finally {
      await client.end();
    }
  });

  it("Redis stores and expires keys", async (t) => {
    const url = serviceUrl(t, "redis");
    if (!url) return;
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      const key = `agentry:test:${process.pid}`;
      assert.equal(await redis.set(key, "v", "EX", 30), "OK");
      assert.equal(await redis.get(key), "v");
      const ttl = await redis.ttl(key);
      assert.ok(ttl > 0 && ttl <= 30, `ttl ${ttl}`);
      await redis.del(key);
    } finally {
      redis.disconnect();
    }
  });
});
