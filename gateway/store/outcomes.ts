// The outcomes of audit records, written off the response path: a write's pending record is
// in the database before the cluster is touched (store.beginAudit, awaited), and its outcome
// is queued here once the answer is known and written in batches, one statement per batch,
// one batch in flight at a time (so under load many outcomes share a round trip). A batch
// that fails is tried again with backoff (0.1 s doubling to 5 s); past `maxQueued` new
// outcomes are dropped and their records stay `pending`, which is what a crash
// between the write and its outcome leaves too.
export interface AuditOutcome {
  id: string;
  outcome: "succeeded" | "failed";
  status: number;
  detail?: string | undefined;
  /** When the answer was known. */
  at: Date;
}

export interface OutcomeQueueOptions {
  /** Outcomes waiting at most (default 10,000). */
  maxQueued?: number;
  /** Outcomes per statement at most (default 500). */
  maxBatch?: number;
  /** Told when a batch failed (it is retried) or outcomes were dropped. */
  onError?: (err: unknown, info: { queued: number; dropped: number }) => void;
}

export class OutcomeQueue {
  private readonly write: (batch: AuditOutcome[]) => Promise<void>;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly onError: OutcomeQueueOptions["onError"];
  private queue: AuditOutcome[] = [];
  private draining: Promise<void> | undefined;
  private idle: (() => void)[] = [];

  constructor(write: (batch: AuditOutcome[]) => Promise<void>, options: OutcomeQueueOptions = {}) {
    this.write = write;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.maxBatch = options.maxBatch ?? 500;
    this.onError = options.onError;
  }

  /** Outcomes not written yet. */
  get pending(): number {
    return this.queue.length;
  }

  push(o: AuditOutcome): void {
    if (this.queue.length >= this.maxQueued) {
      this.onError?.(new Error("too many audit outcomes waiting"), { queued: this.queue.length, dropped: 1 });
      return;
    }
    this.queue.push(o);
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
      for (const w of this.idle.splice(0)) w();
    });
  }

  /** Resolves true once every queued outcome is written, false after `timeoutMs`. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (!this.draining) return this.queue.length === 0;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.idle.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return done && this.queue.length === 0;
  }

  private async drain(): Promise<void> {
    let delay = 100;
    // One macrotask first: outcomes answered in the same turn share the first statement.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      try {
        await this.write(batch);
        this.queue.splice(0, batch.length);
        delay = 100;
      } catch (err) {
        this.onError?.(err, { queued: this.queue.length, dropped: 0 });
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}
