// A rate-limited work queue with the semantics controllers rely on: a key is queued at
// most once however often it is added; a key being processed is never handed to a second
// worker, and if it changed meanwhile it is processed again afterwards; failures come
// back after an exponential per-key backoff; addAfter schedules a later visit (the sooner
// of two visits wins, as in client-go).
//
// Keys wait in three lanes, served in order: work under way on objects that exist (an
// event of a child or a status), then new and changed objects (and timers and retries),
// then resyncs. So under a burst of new objects, one whose Pod just became Ready is
// reported at once instead of behind every first pass of the burst. Within a lane, first
// come first served; a key added again in a more urgent lane moves up to it.
export interface QueueObserver {
  depth(n: number): void;
  waited(seconds: number): void;
}

/** The lanes of a WorkQueue, most urgent first. */
export const Lane = {
  /** An event about work under way: a child of the key's object, or its status, changed. */
  Children: 0,
  /** A new or changed object, a timer that came due, a retry after a failure. */
  Objects: 1,
  /** A periodic resync (nothing is known to have changed). */
  Resync: 2,
} as const;
export type Lane = (typeof Lane)[keyof typeof Lane];
const LANES = 3;

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  observer?: QueueObserver;
  now?: () => number;
}

/** A first-in first-out list of keys with O(1) push and shift. */
class Fifo {
  private items: { key: string; seq: number }[] = [];
  private head = 0;

  push(key: string, seq: number): void {
    this.items.push({ key, seq });
  }

  shift(): { key: string; seq: number } | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

interface Queued {
  lane: Lane;
  /** Which entry of its lane's list is the live one (a key that moved up leaves a stale one). */
  seq: number;
  /** When it was first added (for the wait-time metric). */
  added: number;
}

export class WorkQueue {
  private readonly lanes = Array.from({ length: LANES }, () => new Fifo());
  private readonly queued = new Map<string, Queued>();
  private seq = 0;
  private readonly processing = new Set<string>();
  /** Keys added while being processed, with the most urgent lane they were added in. */
  private readonly dirty = new Map<string, Lane>();
  private readonly failures = new Map<string, number>();
  /** Pending addAfter visits: one per key, the soonest asked for. */
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number; lane: Lane }>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly observer: QueueObserver | undefined;
  private readonly now: () => number;

  constructor(options: QueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 300_000;
    this.observer = options.observer;
    this.now = options.now ?? (() => performance.now());
  }

  /** Keys waiting (each once). */
  get length(): number {
    return this.queued.size;
  }

  /** The lane a waiting key is in; undefined when it is not waiting. */
  laneOf(key: string): Lane | undefined {
    return this.queued.get(key)?.lane;
  }

  add(key: string, lane: Lane = Lane.Objects): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.set(key, Math.min(lane, this.dirty.get(key) ?? lane) as Lane);
      return;
    }
    const queued = this.queued.get(key);
    if (queued) {
      if (lane >= queued.lane) return;
      // More urgent now: move up (the entry left in the old lane is skipped when reached).
      queued.lane = lane;
      queued.seq = ++this.seq;
      this.lanes[lane]!.push(key, queued.seq);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      this.observer?.waited(0);
      waiter(key);
      return;
    }
    const seq = ++this.seq;
    this.queued.set(key, { lane, seq, added: this.now() });
    this.lanes[lane]!.push(key, seq);
    this.observer?.depth(this.queued.size);
  }

  /** Adds the key after `ms`; of two pending visits for a key, the sooner wins. */
  addAfter(key: string, ms: number, lane: Lane = Lane.Objects): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key, lane);
    // As in client-go's delaying queue, the sooner of two visits wins.
    const due = this.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.due <= due) {
      pending.lane = Math.min(pending.lane, lane) as Lane;
      return;
    }
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      const fired = this.timers.get(key);
      this.timers.delete(key);
      this.add(key, fired?.lane ?? lane);
    }, ms);
    timer.unref();
    this.timers.set(key, { timer, due, lane: Math.min(lane, pending?.lane ?? lane) as Lane });
  }

  /** Drops the pending addAfter visit of a key, if any. */
  cancelAfter(key: string): void {
    const pending = this.timers.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.timers.delete(key);
  }

  /** Re-adds a key that failed, after an exponential backoff for that key. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of a key that succeeded. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next waiting key, most urgent lane first; undefined when none waits. */
  private next(): string | undefined {
    for (const fifo of this.lanes) {
      for (let item = fifo.shift(); item; item = fifo.shift()) {
        const queued = this.queued.get(item.key);
        if (!queued || queued.seq !== item.seq) continue; // moved to a more urgent lane
        this.queued.delete(item.key);
        this.processing.add(item.key);
        this.observer?.depth(this.queued.size);
        this.observer?.waited((this.now() - queued.added) / 1000);
        return item.key;
      }
    }
    return undefined;
  }

  /** Waits for the next key; undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.next();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key as processed; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    const lane = this.dirty.get(key);
    if (lane !== undefined) {
      this.dirty.delete(key);
      this.add(key, lane);
    }
  }

  get busy(): number {
    return this.processing.size;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters) w(undefined);
    this.waiters = [];
  }
}
