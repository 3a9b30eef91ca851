// Writing a controller's child objects: apply only when the spec hash differs, delete a
// precise incarnation, write status only when it changed, and count every write. A child is
// only ever written when the object of its name is missing or controlled by the child's own
// owner (an owner reference with controller=true and the owner's uid): an object someone
// else made is never taken over, changed or deleted (NameConflictError instead).
//
// Expectations (as client-go's controllers keep them): for the kinds a controller tracks,
// the writer remembers what it just wrote until the cache shows it. A second pass that
// runs before the watch event arrives, and so still sees the cache as it was, writes
// nothing: no second create (nor its read to find out), no second delete, no second status.
import { isConflict, isNotFound, type KubeApi, type KubeObject } from "./client.ts";
import { sameStatus } from "./conditions.ts";
import { keyOf, type SharedInformer } from "./informer.ts";
import { shortHash } from "./names.ts";
import { NameConflictError, controlledBy, controllerOf } from "./ownership.ts";
import type { Metrics } from "./metrics.ts";

export const ANNOTATION_SPEC_HASH = "agentry.dev/spec-hash";

export {
  NAME_CONFLICT_RECHECK_MS,
  NameConflictError,
  controlledBy,
  controllerOf,
  controllerRef,
  isNameConflict,
} from "./ownership.ts";

/** Adds the spec-hash annotation (the hash of everything else) used to skip unchanged writes. */
export function withSpecHash(obj: KubeObject): KubeObject {
  const hash = shortHash(obj);
  obj.metadata.annotations = { ...obj.metadata.annotations, [ANNOTATION_SPEC_HASH]: hash };
  return obj;
}

/** Unchanged when the spec-hash annotations agree (so objects without one are never updated in place). */
export const sameSpecHash = (current: KubeObject, desired: KubeObject): boolean =>
  current.metadata.annotations?.[ANNOTATION_SPEC_HASH] ===
  desired.metadata.annotations?.[ANNOTATION_SPEC_HASH];

/** How long a write is expected to show in the cache at the latest; after that the cache is believed. */
export const EXPECTATION_MS = 30_000;

/** What a write left behind: the cache shows it once the object's resourceVersion moved on. */
interface Expectation {
  /** What was written: the spec hash of a child, or the status. */
  what: string;
  /** The resourceVersion the cache showed when the write was made (none: the object was absent). */
  staleRv: string | undefined;
  until: number;
}

export class ChildWriter {
  private readonly client: KubeApi;
  private readonly metrics: Metrics;
  private readonly controller: string;
  private readonly now: () => number;
  /** Kinds whose cache events this writer follows (track()): only they get expectations. */
  private readonly tracked = new Set<string>();
  /** Tracked kinds whose caches hold every object of the kind (no label selector): see current(). */
  private readonly whole = new Set<string>();
  /** Writes not yet seen in the cache, by "<kind> <namespace>/<name>" (and "+status" for status). */
  private readonly expected = new Map<string, Expectation>();
  /** The tracked kinds' cache lookups (for the version the cache holds when a write is made). */
  private readonly caches = new Map<
    string,
    (namespace: string | undefined, name: string) => KubeObject | undefined
  >();
  /** Deletes not yet seen in the cache, by uid. */
  private readonly deleted = new Map<string, number>();

  constructor(client: KubeApi, metrics: Metrics, controller: string, now: () => number = () => Date.now()) {
    this.client = client;
    this.metrics = metrics;
    this.controller = controller;
    this.now = now;
  }

  /**
   * Keeps expectations for the objects of each kind these informers cache (by kind): any
   * event of an object means the cache has caught up with it, and its expectations go. A
   * kind whose informer caches every object of the kind (`everyObject`) is looked up in the
   * cache only, never read from the apiserver (see current()).
   */
  track(
    informers: Record<
      string,
      Pick<SharedInformer<KubeObject>, "on" | "everyObject"> & {
        get?: (namespace: string | undefined, name: string) => KubeObject | undefined;
      }
    >,
  ): void {
    for (const [kind, informer] of Object.entries(informers)) {
      this.tracked.add(kind);
      if (informer.get) this.caches.set(kind, informer.get.bind(informer));
      if (informer.everyObject) this.whole.add(kind);
      const seen = (o: KubeObject) => {
        const key = `${kind} ${keyOf(o)}`;
        this.expected.delete(key);
        this.expected.delete(`${key}+status`);
      };
      informer.on("add", seen);
      informer.on("update", seen);
      informer.on("delete", (o) => {
        seen(o);
        if (o.metadata.uid) this.deleted.delete(o.metadata.uid);
      });
    }
  }

  /**
   * Whether this writer wrote the object of `desired`'s name and the cache (`observed`, the
   * cached object or undefined) does not show the write yet.
   */
  awaiting(desired: Pick<KubeObject, "kind" | "metadata">, observed: KubeObject | undefined): boolean {
    const key = `${desired.kind} ${keyOf(desired)}`;
    const e = this.expected.get(key);
    return e !== undefined && this.pending(key, e.what, observed?.metadata.resourceVersion);
  }

  /** Whether a write of `what` to the object of `key` was made and the cache still shows the object as before it. */
  private pending(key: string, what: string, cachedRv: string | undefined): boolean {
    const e = this.expected.get(key);
    if (!e) return false;
    if (e.until <= this.now() || e.staleRv !== cachedRv) {
      this.expected.delete(key);
      return false;
    }
    return e.what === what;
  }

  private expect(key: string, what: string, staleRv: string | undefined): void {
    const now = this.now();
    if (this.expected.size > 10_000)
      for (const [k, e] of this.expected) if (e.until <= now) this.expected.delete(k);
    this.expected.set(key, { what, staleRv, until: now + EXPECTATION_MS });
  }

  /**
   * The object of `desired`'s name as it stands, when the controller named by `desired`'s
   * owner references controls it: the cached `observed` copy when that one is, else a read
   * from the apiserver (a cache of objects with agentry's labels does not show the others).
   * undefined when there is none. Throws NameConflictError when the name is held by an
   * object with another controller, or none. For a kind whose cache holds every object of
   * the kind, the cache answers alone: no read, so a new object's first write is not held
   * up by one (a read would only narrow, not close, the window in which someone else could
   * create the name before the write).
   */
  async current(desired: KubeObject, observed: KubeObject | undefined): Promise<KubeObject | undefined> {
    const uid = controllerOf(desired)?.uid;
    if (observed && controlledBy(observed, uid)) return observed;
    if (this.whole.has(desired.kind)) {
      if (observed) throw new NameConflictError(desired, observed);
      return undefined;
    }
    return this.read(desired);
  }

  /** The object of `desired`'s name as the apiserver has it, when ours (see current()). */
  private async read(desired: KubeObject): Promise<KubeObject | undefined> {
    const uid = controllerOf(desired)?.uid;
    const live = await this.client
      .get(desired.apiVersion, desired.kind, desired.metadata.namespace, desired.metadata.name!)
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
    if (live && !controlledBy(live, uid)) throw new NameConflictError(desired, live);
    return live;
  }

  /**
   * Applies `desired` unless the object of its name is already ours and `unchanged`. An
   * update carries the uid of the incarnation that was checked, so the apiserver refuses it
   * if that object was replaced meanwhile. Throws NameConflictError instead of touching an
   * object its controller did not make. True when it wrote. `nameFree` is called as soon as
   * the name is known to be free or ours (before the write), so that work which must not go
   * ahead beside someone else's object of that name can start without waiting for the write.
   */
  async ensure(
    desired: KubeObject,
    observed: KubeObject | undefined,
    unchanged: (current: KubeObject, desired: KubeObject) => boolean = sameSpecHash,
    nameFree?: () => void,
  ): Promise<boolean> {
    const tracked = this.tracked.has(desired.kind);
    const key = `${desired.kind} ${keyOf(desired)}`;
    const what = desired.metadata.annotations?.[ANNOTATION_SPEC_HASH] ?? shortHash(desired);
    // Written a moment ago and the cache does not show it yet: nothing to do.
    if (tracked && this.pending(key, what, observed?.metadata.resourceVersion)) {
      nameFree?.();
      return false;
    }
    const current = await this.current(desired, observed);
    nameFree?.();
    if (current && unchanged(current, desired)) return false;
    // Expected before the write: its watch event may arrive before its answer does.
    if (tracked) this.expect(key, what, observed?.metadata.resourceVersion);
    try {
      await this.applyOver(desired, current);
    } catch (err) {
      this.expected.delete(key);
      throw err;
    }
    return true;
  }

  /** Applies `desired` onto `current` (as returned by current(): ours, or undefined to create it). */
  async applyOver(desired: KubeObject, current: KubeObject | undefined): Promise<void> {
    const body = current
      ? { ...desired, metadata: { ...desired.metadata, uid: current.metadata.uid } }
      : desired;
    await this.write(desired.kind, "apply", () => this.client.apply(body));
  }

  /**
   * Creates `obj`; false when it already exists under the same controller. Throws
   * NameConflictError when the object of that name belongs to someone else.
   */
  async create(obj: KubeObject): Promise<boolean> {
    const tracked = this.tracked.has(obj.kind);
    const key = `${obj.kind} ${keyOf(obj)}`;
    if (tracked && this.pending(key, "created", undefined)) return false;
    if (tracked) this.expect(key, "created", undefined);
    try {
      await this.write(obj.kind, "create", () => this.client.create(obj));
      return true;
    } catch (err) {
      this.expected.delete(key);
      if (!isConflict(err)) throw err;
      // AlreadyExists: find out whose it is (if it is gone again, the next pass creates it).
      await this.read(obj);
      return false;
    }
  }

  /** Deletes this incarnation of `obj` (uid precondition), its dependents in the background. */
  async remove(obj: KubeObject): Promise<void> {
    const uid = obj.metadata.uid;
    const tracked = uid !== undefined && this.tracked.has(obj.kind);
    if (tracked && (this.deleted.get(uid) ?? 0) > this.now()) return; // deleted a moment ago
    if (tracked) {
      if (this.deleted.size > 10_000)
        for (const [u, until] of this.deleted) if (until <= this.now()) this.deleted.delete(u);
      this.deleted.set(uid, this.now() + EXPECTATION_MS);
    }
    try {
      await this.write(obj.kind, "delete", () =>
        this.client.delete(obj, {
          ...(uid ? { uid } : {}),
          propagation: "Background",
        }),
      );
    } catch (err) {
      if (uid) this.deleted.delete(uid);
      throw err;
    }
  }

  /** Writes `status` by server-side apply to the status subresource, unless it equals `current`. */
  async writeStatus(
    obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    status: unknown,
    current: unknown,
  ): Promise<void> {
    if (sameStatus(status, current)) return;
    const tracked = this.tracked.has(obj.kind);
    const key = `${obj.kind} ${keyOf(obj)}+status`;
    // A pass before the event of the write merges its conditions with the status before it,
    // so a condition that changed in the write gets a later lastTransitionTime: the same
    // status all the same (the one written has the true time).
    const what = JSON.stringify(status, (k, v: unknown) => (k === "lastTransitionTime" ? undefined : v));
    if (tracked && this.pending(key, what, obj.metadata.resourceVersion)) return;
    // The version the cache holds now, which may be newer than the one this pass read (an
    // event that came during the pass, such as the last status write's): until the cache
    // moves past it, it does not show this write.
    const cached = this.caches.get(obj.kind)?.(obj.metadata.namespace, obj.metadata.name!);
    if (tracked) this.expect(key, what, cached?.metadata.resourceVersion ?? obj.metadata.resourceVersion);
    await this.write(obj.kind, "status", () =>
      this.client.apply(
        {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
          status,
        },
        "status",
      ),
    ).catch((err: unknown) => {
      this.expected.delete(key);
      throw err;
    });
  }

  /**
   * Runs one write to the apiserver, counted in agentry_writes_total once it succeeded: not
   * when it fails, nor a delete that found nothing left to delete (the client's `false`).
   */
  async write<T>(kind: string, verb: string, fn: () => Promise<T>): Promise<T> {
    const result = await fn();
    if (result !== false) countWrite(this.metrics, this.controller, kind, verb);
    return result;
  }
}

/** Counts one successful write in agentry_writes_total (for writes made outside a ChildWriter). */
export function countWrite(
  metrics: Pick<Metrics, "writes">,
  controller: string,
  kind: string,
  verb: string,
): void {
  metrics.writes.inc({ controller, kind, verb });
}
