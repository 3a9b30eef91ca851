import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, it } from "node:test";
import { createLogger } from "../lib/log.ts";
import { createAuthenticator } from "./auth/authenticate.ts";
import { hashToken } from "./auth/tokens.ts";
import { GatewayMetrics } from "./metrics.ts";
import { MemoryRateLimiter, type RateLimiter } from "./ratelimit.ts";
import { admit, admitNow, type RequestContext, type RequestDeps } from "./requests.ts";

const bob = { user: "bob", groups: [], via: "token" as const };
const request = (authorization?: string) =>
  ({
    headers: authorization ? { authorization } : {},
    url: "/v1/namespaces/a/workspaces",
  }) as IncomingMessage;

function deps(options: { addressBurst?: number; callerBurst?: number; asyncLimits?: boolean } = {}) {
  const metrics = new GatewayMetrics(false);
  const memory = (burst: number) => new MemoryRateLimiter({ rate: 0.001, burst });
  // A limiter that can only answer later (as the Redis one).
  const later = (l: MemoryRateLimiter): RateLimiter => ({ take: (key) => l.take(key) });
  const address = memory(options.addressBurst ?? 100);
  const caller = memory(options.callerBurst ?? 100);
  const d: RequestDeps = {
    authenticate: createAuthenticator({ tokens: () => new Map([[hashToken("t"), bob]]) }),
    limiter: options.asyncLimits ? later(caller) : caller,
    addressLimiter: options.asyncLimits ? later(address) : address,
    metrics,
    log: createLogger("error", "gateway"),
  };
  return { d, metrics };
}

const counted = async (m: GatewayMetrics, name: string) =>
  (await m.registry.getSingleMetric(name)?.get())?.values.reduce((s, v) => s + v.value, 0) ?? 0;
const ctx = (): RequestContext => ({ id: "r" });

describe("admitNow", () => {
  it("admits a known token under in-memory limits at once, and admit then gives the same identity", async () => {
    const { d } = deps();
    const c = ctx();
    assert.equal(admitNow(d, request("Bearer t"), c, "127.0.0.1"), bob);
    assert.equal(c.identity, bob);
    assert.equal(await admit(d, request("Bearer t"), c, "127.0.0.1"), bob);
  });

  it("refuses at once as admit would (429, counted once), and admit then gives the same refusal", async () => {
    for (const [what, options, limit] of [
      ["the address", { addressBurst: 1 }, "agentry_gateway_address_limited_total"],
      ["the caller", { callerBurst: 1 }, "agentry_gateway_rate_limited_total"],
    ] as const) {
      const { d, metrics } = deps(options);
      assert.equal(admitNow(d, request("Bearer t"), ctx(), "127.0.0.1"), bob, what);
      const c = ctx();
      assert.throws(() => admitNow(d, request("Bearer t"), c, "127.0.0.1"), { status: 429 }, what);
      await assert.rejects(admit(d, request("Bearer t"), c, "127.0.0.1"), { status: 429 }, what);
      assert.equal(await counted(metrics, limit), 1, what);
      // The async way refuses the same way.
      await assert.rejects(admit(d, request("Bearer t"), ctx(), "127.0.0.1"), { status: 429 }, what);
    }
  });

  it("leaves to admit, taking nothing, what needs a wait: an unknown token, limits kept elsewhere", async () => {
    for (const [what, options, header] of [
      ["an unknown token (401 from admit)", {}, "Bearer nope"],
      ["no token (401 from admit)", {}, undefined],
      ["limits that answer later", { asyncLimits: true }, "Bearer t"],
    ] as const) {
      const { d } = deps({ addressBurst: 1, callerBurst: 1, ...options });
      const c = ctx();
      assert.equal(admitNow(d, request(header), c, "127.0.0.1"), undefined, what);
      assert.equal(c.admitted, undefined, what);
      // Nothing was taken: the one request the limits allow is still there.
      const got = admit(d, request(header), c, "127.0.0.1");
      if (header === "Bearer t") assert.equal(await got, bob, what);
      else await assert.rejects(got, { status: 401 }, what);
      assert.equal(admitNow(d, request(header), c, "127.0.0.1"), undefined, `${what}: admission started`);
    }
  });
});
