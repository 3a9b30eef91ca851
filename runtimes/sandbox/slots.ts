// Fair share of exec slots: at most `total` commands at once in the sandbox and at most
// `perKey` for one workspace, so no workspace can take every slot. A request that finds
// no slot waits in its workspace's queue (at most `queuePerKey` waiting, each at most
// `maxWaitMs`); beyond that it is refused with 429 and Retry-After. A freed slot goes to
// the workspaces with waiters in turn (round robin), not to whoever queued most.
import { ProblemError } from "../../lib/http/problem.ts";

export interface SlotLimits {
  total: number;
  perKey: number;
  queuePerKey: number;
  maxWaitMs: number;
  /** Seconds sent in Retry-After with a 429. */
  retryAfterSeconds?: number;
}

interface Waiter {
  key: string;
  grant: (release: () => void) => void;
  fail: (err: Error) => void;
}

export class FairSlots {
  readonly limits: SlotLimits;
  private readonly running = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();
  private runningTotal = 0;
  /** The key that got the last slot from a queue: the next one starts after it. */
  private lastServed = "";

  constructor(limits: SlotLimits) {
    if (limits.perKey < 1 || limits.total < 1) throw new Error("slot limits must be at least 1");
    this.limits = limits;
  }

  /** Commands running now, in all workspaces or in one. */
  active(key?: string): number {
    return key === undefined ? this.runningTotal : (this.running.get(key) ?? 0);
  }

  /** Requests waiting now, in all workspaces or in one. */
  waiting(key?: string): number {
    if (key !== undefined) return this.queues.get(key)?.length ?? 0;
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /**
   * Resolves with a release function once a slot is free for `key`; rejects with 429 when
   * the workspace's queue is full or the wait is over, and with the signal's reason when it
   * aborts first (a client that went away).
   */
  acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.hasRoom(key)) return Promise.resolve(this.take(key));
    const queue = this.queues.get(key) ?? [];
    if (queue.length >= this.limits.queuePerKey)
      return Promise.reject(
        this.busy(
          `workspace "${key}" already runs ${this.active(key)} command(s) with ${queue.length} waiting, its share of this sandbox; retry later`,
        ),
      );
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        key,
        grant: (release) => {
          cleanup();
          resolve(release);
        },
        fail: (err) => {
          cleanup();
          reject(err);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.fail(
            this.busy(
              `no exec slot for workspace "${key}" within ${Math.round(this.limits.maxWaitMs / 1000)} s (${this.runningTotal} command(s) running in this sandbox); retry later`,
            ),
          ),
        this.limits.maxWaitMs,
      );
      timer.unref();
      const onAbort = () => waiter.fail(abortReason(signal!));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.dequeue(waiter);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
      this.queues.set(key, queue);
    });
  }

  private hasRoom(key: string): boolean {
    return this.runningTotal < this.limits.total && this.active(key) < this.limits.perKey;
  }

  private take(key: string): () => void {
    this.running.set(key, this.active(key) + 1);
    this.runningTotal++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.active(key) - 1;
      if (left > 0) this.running.set(key, left);
      else this.running.delete(key);
      this.runningTotal--;
      this.grantNext();
    };
  }

  /** Hands free slots to waiting workspaces in turn, starting after the last one served. */
  private grantNext(): void {
    while (this.runningTotal < this.limits.total) {
      const keys = [...this.queues.keys()].sort();
      const start = keys.findIndex((k) => k > this.lastServed);
      const order = start < 0 ? keys : [...keys.slice(start), ...keys.slice(0, start)];
      const key = order.find((k) => this.active(k) < this.limits.perKey);
      if (key === undefined) return;
      const waiter = this.queues.get(key)![0]!;
      this.lastServed = key;
      waiter.grant(this.take(key));
    }
  }

  private dequeue(waiter: Waiter): void {
    const queue = this.queues.get(waiter.key);
    if (!queue) return;
    const i = queue.indexOf(waiter);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.queues.delete(waiter.key);
  }

  private busy(detail: string): ProblemError {
    return new ProblemError(429, detail, { "retry-after": String(this.limits.retryAfterSeconds ?? 2) });
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("the request was cancelled");
}
