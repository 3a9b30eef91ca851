// When a sandbox's workspaces go to and come from their object store (durable.ts): restored
// (or cloned from their git source, the first time) when placed, flushed after writes go
// quiet, on demand (suspend, drain), before the process exits, and released (flushed, then
// forgotten) when they leave the sandbox. One flush at a time per workspace; a request for
// another while one runs is folded into one more flush after it. A restore or clone that
// fails is retried with backoff; until it succeeds the workspace is not ready.
import type { Durability } from "../../contracts/sandbox.ts";
import type { Log } from "../../lib/log.ts";
import type { DurableStore, FlushResult } from "./durable.ts";
import { cloneInto, GitSourceError, type CloneRequest } from "./gitsource.ts";
import { errorMessage } from "../../lib/log.ts";

export type DurabilityState = Durability;

export interface PlaceRequest {
  id: string;
  dir: string;
  source?: CloneRequest;
  /** Runs after the files are in (hands them to the workspace's user). */
  settle?: () => Promise<void>;
}

interface Entry {
  state: DurabilityState;
  dir: string;
  timer?: NodeJS.Timeout;
  retry?: NodeJS.Timeout;
  attempts: number;
  running?: Promise<FlushResult | undefined>;
  placing?: Promise<void>;
  again: boolean;
  gone: boolean;
}

export interface BackingOptions {
  /** No store configured: every workspace reports durable=false with NO_STORE_MESSAGE. */
  store?: DurableStore;
  log: Log;
  /** Quiet time after the last write before a flush (default 5 s). */
  debounceMs?: number;
  /** Bound of one flush (default 120 s). */
  flushTimeoutMs?: number;
  /** First retry of a failed restore or clone (default 2 s; doubles up to 5 min). */
  retryMs?: number;
  /** Told of every flush: its bytes, or undefined when it failed (metrics). */
  onFlush?: (bytes: number | undefined) => void;
}

export const NO_STORE_MESSAGE =
  "no object store configured for this fleet: files live only in the sandbox pod and are lost when it goes";

const message = (err: unknown) => errorMessage(err);

export class Backing {
  private readonly o: BackingOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(options: BackingOptions) {
    this.o = options;
  }

  get enabled(): boolean {
    return this.o.store !== undefined;
  }

  /** The workspace's state; undefined when this sandbox does not back it. */
  state(id: string): DurabilityState | undefined {
    return this.entries.get(id)?.state;
  }

  /** True when the workspace's files may be used (restored, or not backed here at all). */
  /** Whether an object store backs the workspaces (else they live on this pod only). */
  get hasStore(): boolean {
    return this.o.store !== undefined;
  }

  ready(id: string): boolean {
    const e = this.entries.get(id);
    return !e || e.state.phase === "ready";
  }

  /**
   * Brings a newly placed workspace's files in: from the store, else from git, else empty.
   * Starts in the background; `state` says how it goes. Idempotent.
   */
  place(req: PlaceRequest): void {
    if (this.entries.has(req.id)) return;
    const entry: Entry = {
      state: { phase: "restoring", durable: false, dirty: false },
      dir: req.dir,
      attempts: 0,
      again: false,
      gone: false,
    };
    this.entries.set(req.id, entry);
    entry.placing = this.attempt(req, entry);
  }

  /** A workspace already on this sandbox's disk (the runtime restarted): keep it, flush it. */
  adopt(id: string, dir: string): void {
    if (this.entries.has(id)) return;
    const entry: Entry = {
      state: {
        phase: "ready",
        durable: false,
        dirty: this.o.store !== undefined,
        origin: "local",
        ...(this.o.store ? {} : { message: NO_STORE_MESSAGE }),
      },
      dir,
      attempts: 0,
      again: false,
      gone: false,
    };
    this.entries.set(id, entry);
    if (this.o.store) void this.flush(id).catch(() => undefined);
  }

  /** Waits for the current placement attempt (tests, and callers that must have the files). */
  async placed(id: string): Promise<DurabilityState | undefined> {
    await this.entries.get(id)?.placing;
    return this.state(id);
  }

  private async attempt(req: PlaceRequest, e: Entry): Promise<void> {
    e.attempts++;
    try {
      let cloned: Partial<DurabilityState> = {};
      const restored = this.o.store ? await this.o.store.restore(req.id, req.dir) : undefined;
      if (!restored) {
        if (req.source) {
          const { commit } = await cloneInto(req.dir, req.source);
          this.o.log.info("workspace cloned", { workspace: req.id, commit });
          cloned = { origin: "cloned", sourceCommit: commit };
        } else cloned = { origin: "empty" };
      }
      await req.settle?.();
      if (e.gone) return;
      if (restored) {
        e.state = {
          phase: "ready",
          durable: true,
          dirty: false,
          lastFlushTime: restored.time,
          bytes: restored.bytes,
          origin: "restored",
        };
        this.o.log.info("workspace restored", {
          workspace: req.id,
          seq: restored.seq,
          bytes: restored.bytes,
        });
        return;
      }
      e.state = {
        phase: "ready",
        durable: false,
        dirty: this.o.store !== undefined,
        ...cloned,
        ...(this.o.store ? {} : { message: NO_STORE_MESSAGE }),
      };
      // The first flush makes it durable (and pins what was cloned).
      if (this.o.store) await this.flush(req.id).catch(() => undefined);
    } catch (err) {
      if (e.gone) return;
      const reason = err instanceof GitSourceError ? err.reason : "RestoreFailed";
      const what =
        err instanceof GitSourceError ? "cloning the git source" : "restoring from the object store";
      const delay = Math.min(300_000, (this.o.retryMs ?? 2000) * 2 ** Math.min(e.attempts - 1, 10));
      e.state = {
        phase: "failed",
        durable: false,
        dirty: false,
        reason,
        message: `${what} failed (attempt ${e.attempts}, next in ${Math.round(delay / 1000)}s): ${message(err)}`,
      };
      this.o.log.info("workspace placement failed", { workspace: req.id, reason, error: message(err) });
      e.retry = setTimeout(() => {
        if (!e.gone) e.placing = this.attempt(req, e);
      }, delay);
      e.retry.unref();
    }
  }

  /** A write happened: flush once writes have been quiet for the debounce time. */
  touched(id: string): void {
    const e = this.entries.get(id);
    if (!e || e.state.phase !== "ready" || !this.o.store) return;
    e.state = { ...e.state, dirty: true };
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => void this.flush(id).catch(() => undefined), this.o.debounceMs ?? 5000);
    e.timer.unref();
  }

  /** Flushes now (waiting for one in progress, then once more if asked meanwhile). */
  async flush(id: string): Promise<FlushResult | undefined> {
    const e = this.entries.get(id);
    if (!e || !this.o.store || e.state.phase !== "ready") return undefined;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    if (e.running) {
      e.again = true;
      await e.running.catch(() => undefined);
      if (!e.again) return undefined;
    }
    e.again = false;
    e.running = this.flushOnce(id, e);
    try {
      return await e.running;
    } finally {
      e.running = undefined;
    }
  }

  private async flushOnce(id: string, e: Entry): Promise<FlushResult> {
    const signal = AbortSignal.timeout(this.o.flushTimeoutMs ?? 120_000);
    // Writes from now on belong to the next flush.
    e.state = { ...e.state, dirty: false };
    try {
      const r = await this.o.store!.flush(id, e.dir, signal);
      const { message: _m, reason: _r, ...rest } = e.state;
      e.state = { ...rest, durable: true, lastFlushTime: r.time, bytes: r.bytes };
      this.o.onFlush?.(r.bytes);
      this.o.log.info("workspace flushed", {
        workspace: id,
        seq: r.seq,
        uploaded: r.uploaded,
        bytes: r.bytes,
      });
      return r;
    } catch (err) {
      e.state = {
        ...e.state,
        durable: false,
        dirty: true,
        reason: "FlushFailed",
        message: `flush failed: ${message(err)}`,
      };
      this.o.onFlush?.(undefined);
      this.o.log.info("workspace flush failed", { workspace: id, error: message(err) });
      throw err;
    }
  }

  /** True while a flush of the workspace runs. */
  flushing(id: string): boolean {
    return this.entries.get(id)?.running !== undefined;
  }

  /** Flushes every workspace with changes (drain, SIGTERM); the ids whose flush failed, with why. */
  async flushAll(): Promise<{ id: string; error: string }[]> {
    const failed: { id: string; error: string }[] = [];
    await Promise.all(
      [...this.entries.entries()]
        .filter(([, e]) => e.state.dirty || e.running !== undefined)
        .map(([id]) => this.flush(id).catch((err: unknown) => failed.push({ id, error: message(err) }))),
    );
    return failed;
  }

  /** The workspace leaves this sandbox (moved, suspended, deleted): forget it, no flush. */
  forget(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.gone = true;
    if (e.timer) clearTimeout(e.timer);
    if (e.retry) clearTimeout(e.retry);
    this.entries.delete(id);
  }

  /** Removes everything stored for the workspace (a deleted Workspace that is not retained). */
  async removeStored(id: string): Promise<void> {
    this.forget(id);
    if (this.o.store) await this.o.store.remove(id);
  }
}

export { GitSourceError };
