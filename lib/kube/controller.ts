// Runs one reconciler: a work queue fed by informer events, a few workers, metrics and
// logs around every reconcile, errors sent back to the queue with backoff, and a drain
// on stop so in-flight work finishes.
import { Lane, WorkQueue } from "./queue.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "./metrics.ts";
import { errorMessage } from "../log.ts";

export interface ReconcileResult {
  /** Visit the key again after this many milliseconds (e.g. a backoff or a timer). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  readonly name: string;
  reconcile(key: string): Promise<ReconcileResult | void>;
  /**
   * Every pass says when it needs the next visit (a backoff, a bound, a recheck), computed
   * from what it sees: a visit an earlier pass asked for is dropped when a later pass asks
   * for none (no empty passes left behind by timers that no longer apply).
   */
  readonly latestPassDecides?: boolean;
}

export interface ControllerOptions {
  workers?: number;
  metrics: Metrics;
  log: Logger;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private running: Promise<void>[] = [];
  private started = false;
  private resyncing = false;

  constructor(reconciler: Reconciler, options: ControllerOptions) {
    this.reconciler = reconciler;
    this.workers = options.workers ?? 4;
    this.metrics = options.metrics;
    this.log = options.log.child({ controller: reconciler.name });
    const name = reconciler.name;
    this.queue = new WorkQueue({
      observer: {
        depth: (n) => this.metrics.queueDepth.set({ name }, n),
        waited: (s) => this.metrics.queueWaitSeconds.observe({ name }, s),
      },
    });
  }

  /**
   * Queues a key in a lane (queue.ts): Lane.Children for an event of work under way (a
   * child or the status of the key's object changed), Lane.Objects (the default) for a new
   * or changed object; during resync() every key goes in Lane.Resync.
   */
  enqueue(key: string, lane: Lane = Lane.Objects): void {
    this.metrics.queueAdds.inc({ name: this.reconciler.name });
    this.queue.add(key, this.resyncing ? Lane.Resync : lane);
  }

  /** Runs `enqueueAll` (a reconciler's full resync) with its keys queued behind all other work. */
  resync(enqueueAll: () => void): void {
    this.resyncing = true;
    try {
      enqueueAll();
    } finally {
      this.resyncing = false;
    }
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.workers; i++) this.running.push(this.work());
    this.log.info("controller started", { workers: this.workers });
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = this.metrics.reconcileSeconds.startTimer({ controller: this.reconciler.name });
      this.metrics.activeWorkers.inc({ controller: this.reconciler.name });
      try {
        const result = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.inc({ controller: this.reconciler.name, result: "requeue" });
        } else {
          if (this.reconciler.latestPassDecides) this.queue.cancelAfter(key);
          this.metrics.reconciles.inc({ controller: this.reconciler.name, result: "success" });
        }
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconciles.inc({ controller: this.reconciler.name, result: "error" });
        this.metrics.reconcileErrors.inc({ controller: this.reconciler.name });
        this.metrics.queueRetries.inc({ name: this.reconciler.name });
        this.log.warn("reconcile failed; will retry", {
          key,
          error: errorMessage(err),
          retryInMs: delay,
        });
      } finally {
        end();
        this.metrics.activeWorkers.dec({ controller: this.reconciler.name });
        this.queue.done(key);
      }
    }
  }

  /** Stops taking work and waits (up to `timeoutMs`) for the reconciles in flight. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.queue.shutDown();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.running),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
