// The event bus in Redis, shared by every gateway replica: each stream is a capped Redis
// stream (XADD MAXLEN ~ history; its ids are the event ids) plus a pub/sub channel for live
// delivery, written together by one Lua script so order is the same everywhere. The watch
// of a stream runs on the one replica holding its lease key; the last resourceVersion is
// kept beside it so a replica taking over resumes the watch where the last one stopped.
// Pub/sub delivers only while connected: after the subscriber reconnects (Redis restarted
// or the network dropped), each stream's listeners get what they missed from the stream
// itself (XRANGE after the last id they saw) before live messages resume, in id order.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { redisLost } from "../ratelimit.ts";
import type { Logger } from "../../lib/log.ts";
import { compareIds, type EventBus, type Listener, type StreamEvent } from "./bus.ts";
import { errorMessage } from "../../lib/log.ts";

const PUBLISH = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[2], 'd', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3])
return id
`;
const LEAD = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Commands = Redis & {
  agentryPublish(
    s: string,
    c: string,
    p: string,
    max: number,
    t: string,
    d: string,
    rv: string,
  ): Promise<string>;
  agentryLead(k: string, me: string, ttl: number): Promise<number>;
  agentryRelease(k: string, me: string): Promise<number>;
};

export class RedisBus implements EventBus {
  private readonly redis: Commands;
  private readonly sub: Redis;
  private readonly me = randomUUID();
  private readonly prefix: string;
  private readonly historySize: number;
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Per stream: the highest event id handed to its listeners. */
  private readonly lastSeen = new Map<string, string>();
  /** Streams being re-read after a reconnect: live messages wait here meanwhile. */
  private readonly recovering = new Map<string, StreamEvent[]>();
  private readonly log: Logger;

  constructor(redis: Redis, options: { historySize?: number; prefix?: string }, log: Logger) {
    this.redis = redis as Commands;
    this.historySize = options.historySize ?? 1000;
    this.prefix = options.prefix ?? "agentry:gateway:events:";
    this.log = log;
    redis.defineCommand("agentryPublish", { numberOfKeys: 3, lua: PUBLISH });
    redis.defineCommand("agentryLead", { numberOfKeys: 1, lua: LEAD });
    redis.defineCommand("agentryRelease", { numberOfKeys: 1, lua: RELEASE });
    this.sub = redis.duplicate();
    this.sub.on("error", (err: Error) => this.log.warn("redis subscriber error", { error: err.message }));
    this.sub.on("message", (channel: string, message: string) => {
      const stream = channel.slice(this.prefix.length + 4);
      const a = message.indexOf("\n");
      const b = message.indexOf("\n", a + 1);
      const event = { id: message.slice(0, a), type: message.slice(a + 1, b), data: message.slice(b + 1) };
      const waiting = this.recovering.get(stream);
      if (waiting) waiting.push(event);
      else this.deliver(stream, event);
    });
    this.sub.on("ready", () => void this.resync());
  }

  /** True while both Redis connections are up (a stream cannot be served otherwise). */
  available(): boolean {
    return this.redis.status === "ready" && !redisLost(this.sub);
  }

  private deliver(stream: string, event: StreamEvent): void {
    const seen = this.lastSeen.get(stream);
    if (seen !== undefined && !(compareIds(event.id, seen) > 0)) return;
    this.lastSeen.set(stream, event.id);
    for (const l of this.listeners.get(stream) ?? []) l(event);
  }

  /** After a reconnect: subscribe again, then hand each stream's listeners what they missed. */
  private async resync(): Promise<void> {
    for (const stream of [...this.listeners.keys()]) await this.resyncStream(stream);
  }

  private async resyncStream(stream: string, retry = false): Promise<void> {
    if (!this.listeners.has(stream)) return void this.recovering.delete(stream);
    let waiting = this.recovering.get(stream);
    if (waiting && !retry) return; // already being re-read
    if (!waiting) {
      waiting = [];
      this.recovering.set(stream, waiting);
    }
    try {
      // Ordered after ioredis's own re-subscription on this connection: once it answers,
      // live messages flow, and the XRANGE below sees everything published before.
      await this.sub.subscribe(this.key("pub", stream));
      const seen = this.lastSeen.get(stream);
      const missed = seen === undefined ? [] : await this.range(stream, seen);
      if (missed.length)
        this.log.info("event stream resumed after a Redis reconnect", { stream, missed: missed.length });
      this.recovering.delete(stream);
      for (const e of [...missed, ...waiting]) this.deliver(stream, e);
    } catch (err) {
      // Live messages keep waiting (delivering them first would skip the gap): try again.
      this.log.warn("resuming an event stream after a Redis reconnect failed; retrying", {
        stream,
        error: errorMessage(err),
      });
      setTimeout(() => void this.resyncStream(stream, true), 1000).unref();
    }
  }

  private async range(stream: string, after: string): Promise<StreamEvent[]> {
    const rows = (await this.redis.xrange(this.key("log", stream), `(${after}`, "+")) as [string, string[]][];
    return rows.map(([id, f]) => ({
      id,
      type: f[f.indexOf("t") + 1] ?? "",
      data: f[f.indexOf("d") + 1] ?? "",
    }));
  }

  private key(kind: "log" | "pub" | "pos" | "lead", stream: string): string {
    return `${this.prefix}${kind}:${stream}`;
  }

  async publish(stream: string, type: string, data: string, resourceVersion: string): Promise<void> {
    await this.redis.agentryPublish(
      this.key("log", stream),
      this.key("pub", stream),
      this.key("pos", stream),
      this.historySize,
      type,
      data,
      resourceVersion,
    );
  }

  async subscribe(stream: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(stream);
    if (!set) {
      set = new Set();
      this.listeners.set(stream, set);
      await this.sub.subscribe(this.key("pub", stream));
      // Where the stream stands now: after a reconnect, listeners get what came after it.
      const last = (await this.redis.xrevrange(this.key("log", stream), "+", "-", "COUNT", 1))[0]?.[0];
      const seen = this.lastSeen.get(stream);
      if (seen === undefined || compareIds(last ?? "0-0", seen) > 0) this.lastSeen.set(stream, last ?? "0-0");
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(stream) === set) {
        this.listeners.delete(stream);
        this.lastSeen.delete(stream);
        this.sub.unsubscribe(this.key("pub", stream)).catch(() => undefined);
      }
    };
  }

  async since(stream: string, lastId: string): Promise<StreamEvent[] | undefined> {
    const key = this.key("log", stream);
    let info: unknown[];
    try {
      info = (await this.redis.call("XINFO", "STREAM", key)) as unknown[];
    } catch (err) {
      // No such stream: the id is not one of ours. Any other error (Redis down) is thrown.
      if (err instanceof Error && /no such key/i.test(err.message)) return undefined;
      throw err;
    }
    const field = (name: string) => info[info.indexOf(name) + 1] as string;
    if (compareIds(lastId, field("last-generated-id")) > 0) return undefined;
    const deleted = field("max-deleted-entry-id");
    if (deleted && compareIds(lastId, deleted) < 0) return undefined;
    return this.range(stream, lastId);
  }

  async lead(stream: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.agentryLead(this.key("lead", stream), this.me, ttlMs)) === 1;
  }

  async release(stream: string): Promise<void> {
    await this.redis.agentryRelease(this.key("lead", stream), this.me);
  }

  async position(stream: string): Promise<string | undefined> {
    return (await this.redis.get(this.key("pos", stream))) ?? undefined;
  }

  close(): Promise<void> {
    this.listeners.clear();
    this.sub.disconnect();
    return Promise.resolve();
  }
}
