// Calls made close together, gathered into one batch so they share a round trip (a "group
// commit"): what arrives in the same turn of the event loop, or while the batches allowed
// in flight are all running, goes out together. A lone call waits one macrotask, no more.
// The runner answers each item on its own (a settled result per item, in order), so one
// bad item need not fail the others.

export interface BatcherOptions {
  /** Items per batch at most (default 200). */
  maxBatch?: number;
  /** Batches running at once at most (default 2). */
  maxInFlight?: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class Batcher<T, R> {
  private readonly run: (items: T[]) => Promise<PromiseSettledResult<R>[]>;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private queue: Waiting<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(run: (items: T[]) => Promise<PromiseSettledResult<R>[]>, options: BatcherOptions = {}) {
    this.run = run;
    this.maxBatch = options.maxBatch ?? 200;
    this.maxInFlight = options.maxInFlight ?? 2;
  }

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a batch (not those of batches in flight). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight++;
    this.schedule(); // more than one batch's worth waiting: the next may start beside this one
    try {
      const results = await this.run(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const r = results[i];
        if (r?.status === "fulfilled") w.resolve(r.value);
        else w.reject(r ? r.reason : new Error("the batch gave no answer for this item"));
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
