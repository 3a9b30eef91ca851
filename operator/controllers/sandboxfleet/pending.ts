// The fleet controller's own Workspace writes that its cache may not show yet. A placement
// written in one pass must be seen by the next, which may run before the watch delivers the
// write; deciding it again from the stale cache could place the workspace twice. The cache
// is never changed (it hands out frozen objects, shared with other controllers): each write's
// answer is kept here and read in place of the cached object until the cache catches up.
import type { Workspace } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { keyOf } from "../../../lib/kube/informer.ts";
import { parseObject } from "../../../lib/kube/typed.ts";

/** How long an answer is kept when the cache never shows that version (a missed watch event). */
export const PENDING_TTL_MS = 60_000;

interface Written {
  object: Workspace;
  /** The cache's resourceVersion when the first of these writes was made. */
  base: string | undefined;
  at: number;
}

const DECIMAL = /^\d+$/;

/**
 * Whether the cache's version is at or past ours. The apiserver's resourceVersions are
 * etcd revisions, decimal and increasing; where they are not (another storage), any
 * version other than the one the cache had when we wrote counts as caught up.
 */
function caughtUp(cached: string | undefined, ours: Written): boolean {
  const mine = ours.object.metadata.resourceVersion;
  if (cached === mine) return true;
  if (cached !== undefined && mine !== undefined && DECIMAL.test(cached) && DECIMAL.test(mine))
    return BigInt(cached) >= BigInt(mine);
  return cached !== ours.base;
}

export class PendingWrites {
  private readonly written = new Map<string, Written>();
  private readonly ttlMs: number;

  constructor(ttlMs = PENDING_TTL_MS) {
    this.ttlMs = ttlMs;
  }

  /**
   * Keeps the object a write returned (parsed and frozen like the cache's), to be read
   * instead of `cached` until the cache shows it. Returns what to read from now on.
   */
  wrote(cached: Workspace, answer: KubeObject, now: number): Workspace {
    const parsed = parseObject("Workspace", answer);
    if (!parsed.ok || parsed.value.metadata.uid !== cached.metadata.uid) return cached;
    const key = keyOf(cached);
    const earlier = this.written.get(key);
    const base =
      earlier && earlier.object.metadata.uid === cached.metadata.uid
        ? earlier.base
        : cached.metadata.resourceVersion;
    this.written.set(key, { object: parsed.value, base, at: now });
    return parsed.value;
  }

  /** The newer of the cached object and the last answer to a write of it. */
  view(cached: Workspace, now: number): Workspace {
    const key = keyOf(cached);
    const ours = this.written.get(key);
    if (!ours) return cached;
    if (
      ours.object.metadata.uid !== cached.metadata.uid ||
      caughtUp(cached.metadata.resourceVersion, ours) ||
      now - ours.at > this.ttlMs
    ) {
      this.written.delete(key);
      return cached;
    }
    return ours.object;
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  /** Forgets answers kept longer than the bound (of workspaces deleted meanwhile, say). */
  prune(now: number): void {
    for (const [key, w] of this.written) if (now - w.at > this.ttlMs) this.written.delete(key);
  }

  get size(): number {
    return this.written.size;
  }
}
