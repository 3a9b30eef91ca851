// When a sandbox's workspaces go to and come from their object store (durable.ts): restored
// (or cloned from their git source, the first time) when placed, flushed after writes go
// quiet, on demand (suspend, drain), before the process exits, and removed from the store
// when the workspace is deleted (unless retained). One flush at a time per workspace; a
// request for another while one runs is folded into one more flush after it.
import type { Logger } from "winston";
import type { DurableStore, FlushResult } from "./durable.ts";
import { cloneInto, GitSourceError, type CloneRequest } from "./gitsource.ts";

export interface DurabilityState {
  /** True once the workspace's files are in the store as of the last flush. */
  durable: boolean;
  /** Why not durable, or what the last flush or restore failed with. */
  message?: string;
  lastFlushTime?: string;
  bytes?: number;
  /** Commit the git source was cloned at (first placement only). */
  sourceCommit?: string;
  /** restored: from the store; cloned: from git; empty: neither had anything. */
  origin?: "restored" | "cloned" | "empty";
}

export interface PlaceRequest {
  id: string;
  dir: string;
  source?: CloneRequest;
}

interface Entry {
  state: DurabilityState;
  dir: string;
  timer?: NodeJS.Timeout;
  running?: Promise<FlushResult | undefined>;
  again: boolean;
  dirty: boolean;
}

export interface BackingOptions {
  /** No store configured: every workspace reports durable=false with this message. */
  store?: DurableStore;
  log: Logger;
  /** Quiet time after the last write before a flush (default 5 s). */
  debounceMs?: number;
  /** Bound of one flush (default 120 s). */
  flushTimeoutMs?: number;
}

export const NO_STORE_MESSAGE =
  "no object store configured for this fleet: files live only in the sandbox pod and are lost when it goes";

export class Backing {
  private readonly o: BackingOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(options: BackingOptions) {
    this.o = options;
  }

  get enabled(): boolean {
    return this.o.store !== undefined;
  }

  state(id: string): DurabilityState {
    return (
      this.entries.get(id)?.state ?? {
        durable: false,
        message: this.enabled ? "not placed" : NO_STORE_MESSAGE,
      }
    );
  }

  /** Brings a newly placed workspace's files in: from the store, else from git, else empty. */
  async place(req: PlaceRequest): Promise<DurabilityState> {
    const entry: Entry = { state: { durable: false }, dir: req.dir, again: false, dirty: false };
    this.entries.set(req.id, entry);
    if (!this.o.store) {
      entry.state = { durable: false, message: NO_STORE_MESSAGE, ...(await this.cloneIfAny(req)) };
      return entry.state;
    }
    const restored = await this.o.store.restore(req.id, req.dir);
    if (restored) {
      entry.state = {
        durable: true,
        lastFlushTime: restored.time,
        bytes: restored.bytes,
        origin: "restored",
      };
      this.o.log.info("workspace restored", { workspace: req.id, seq: restored.seq, bytes: restored.bytes });
      return entry.state;
    }
    const cloned = await this.cloneIfAny(req);
    entry.state = { durable: false, ...cloned };
    // The first flush makes it durable (and pins what was cloned).
    await this.flush(req.id);
    return entry.state;
  }

  private async cloneIfAny(req: PlaceRequest): Promise<Partial<DurabilityState>> {
    if (!req.source) return { origin: "empty" };
    const { commit } = await cloneInto(req.dir, req.source);
    this.o.log.info("workspace cloned", { workspace: req.id, commit });
    return { origin: "cloned", sourceCommit: commit };
  }

  /** A write happened: flush once writes have been quiet for the debounce time. */
  touched(id: string): void {
    const e = this.entries.get(id);
    if (!e || !this.o.store) return;
    e.dirty = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => void this.flush(id).catch(() => undefined), this.o.debounceMs ?? 5000);
    e.timer.unref();
  }

  /** Flushes now (waiting for one in progress, then once more if asked meanwhile). */
  async flush(id: string): Promise<FlushResult | undefined> {
    const e = this.entries.get(id);
    if (!e || !this.o.store) return undefined;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    if (e.running) {
      e.again = true;
      await e.running.catch(() => undefined);
      if (!e.again) return undefined;
    }
    e.again = false;
    e.dirty = false;
    e.running = this.flushOnce(id, e);
    try {
      return await e.running;
    } finally {
      e.running = undefined;
    }
  }

  private async flushOnce(id: string, e: Entry): Promise<FlushResult> {
    const signal = AbortSignal.timeout(this.o.flushTimeoutMs ?? 120_000);
    try {
      const r = await this.o.store!.flush(id, e.dir, signal);
      e.state = { ...e.state, durable: true, lastFlushTime: r.time, bytes: r.bytes };
      delete e.state.message;
      this.o.log.info("workspace flushed", {
        workspace: id,
        seq: r.seq,
        uploaded: r.uploaded,
        bytes: r.bytes,
      });
      return r;
    } catch (err) {
      const message = `flush failed: ${err instanceof Error ? err.message : String(err)}`;
      e.state = { ...e.state, durable: false, message };
      e.dirty = true;
      this.o.log.warn("workspace flush failed", { workspace: id, error: message });
      throw err;
    }
  }

  /** Flushes every workspace (drain, SIGTERM); the ids whose flush failed, with why. */
  async flushAll(): Promise<{ id: string; error: string }[]> {
    const failed: { id: string; error: string }[] = [];
    await Promise.all(
      [...this.entries.keys()].map((id) =>
        this.flush(id).catch((err: unknown) =>
          failed.push({ id, error: err instanceof Error ? err.message : String(err) }),
        ),
      ),
    );
    return failed;
  }

  /** The workspace leaves this sandbox (moved or suspended): flush, then forget it. */
  async release(id: string): Promise<void> {
    await this.flush(id);
    this.forget(id);
  }

  /** The Workspace is deleted: its stored files go too, unless retained. */
  async remove(id: string, retain: boolean): Promise<void> {
    const e = this.entries.get(id);
    if (e?.timer) clearTimeout(e.timer);
    await e?.running?.catch(() => undefined);
    this.forget(id);
    if (!retain && this.o.store) await this.o.store.remove(id);
  }

  private forget(id: string): void {
    const e = this.entries.get(id);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(id);
  }
}

export { GitSourceError };
