// Per-identity rate limit: a token bucket (rate per second, burst). In Redis (one Lua
// script, shared by every gateway replica) when REDIS_URL is set, in process otherwise.
// If Redis fails the request is let through and the failure logged: the limit protects
// the apiserver, it must not take the API down with it.
import type { Redis } from "ioredis";

/** True once a connection was lost and ioredis is reconnecting (or gave up): not while it first connects. */
export const redisLost = (r: Redis): boolean => ["reconnecting", "close", "end"].includes(r.status);
import type { Logger } from "../lib/log.ts";
import { TokenBucket } from "../lib/kube/client.ts";
import { errorMessage } from "../lib/log.ts";

export interface RateDecision {
  allowed: boolean;
  retryAfterMs: number;
}

export interface RateLimiter {
  take(identity: string): Promise<RateDecision>;
  /** The same decision at once, for a limiter that keeps its buckets in memory. */
  takeNow?(identity: string): RateDecision;
}

export interface RateOptions {
  rate: number;
  burst: number;
}

const ALLOWED: RateDecision = Object.freeze({ allowed: true, retryAfterMs: 0 });

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly options: RateOptions;
  constructor(options: RateOptions) {
    this.options = options;
  }
  take(identity: string): Promise<RateDecision> {
    return Promise.resolve(this.takeNow(identity));
  }
  takeNow(identity: string): RateDecision {
    let b = this.buckets.get(identity);
    if (!b) {
      if (this.buckets.size > 100_000) this.buckets.clear();
      b = new TokenBucket(this.options.rate, this.options.burst);
      this.buckets.set(identity, b);
    }
    const wait = b.tryTake();
    return wait === 0 ? ALLOWED : { allowed: false, retryAfterMs: wait };
  }
}

const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
`;

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly options: RateOptions;
  private readonly log: Logger;
  private readonly prefix: string;
  constructor(redis: Redis, options: RateOptions, log: Logger, prefix = "agentry:gateway:rate:") {
    this.redis = redis;
    this.options = options;
    this.log = log;
    this.prefix = prefix;
    redis.defineCommand("agentryTakeToken", { numberOfKeys: 1, lua: SCRIPT });
  }
  private warnedAt = 0;

  async take(identity: string): Promise<RateDecision> {
    // Redis lost: do not queue behind its reconnect, let the request through now.
    if (redisLost(this.redis)) return this.failOpen(`Redis connection is ${this.redis.status}`);
    try {
      const r = this.redis as Redis & {
        agentryTakeToken(key: string, rate: number, burst: number): Promise<number>;
      };
      const wait = Number(
        await r.agentryTakeToken(this.prefix + identity, this.options.rate, this.options.burst),
      );
      return { allowed: wait === 0, retryAfterMs: wait };
    } catch (err) {
      return this.failOpen(errorMessage(err));
    }
  }

  /** Lets the request through; warns at most every 10 s, not once per request. */
  private failOpen(error: string): RateDecision {
    if (Date.now() - this.warnedAt > 10_000) {
      this.warnedAt = Date.now();
      this.log.warn("rate limit check failed; letting requests through until Redis answers", { error });
    }
    return { allowed: true, retryAfterMs: 0 };
  }
}
