// One kind's objects in every namespace, kept by a shared informer of lib/kube (listed in
// pages, then watched with the gateway's own identity, resumed from the last resourceVersion
// and bookmark, listed again after 410 Gone) as the JSON the gateway answers with, indexed in
// an ObjectStore. Besides the objects it knows how far it has come (`rv`: every change up to
// it is in), when each namespace last changed (so a continue token's snapshot can be told
// still current or not), and what this gateway wrote (its fence): `caughtUp` waits, bounded,
// until the writes made through the gateway are in, which is what makes a list right after
// a write see that write.
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { Informer } from "../../lib/kube/informer.ts";
import type { Logger } from "../../lib/log.ts";
import { revision } from "./continue.ts";
import { jsonBytes, ObjectStore, type Entry } from "./objects.ts";

/** What a DELETE answers: the object (with a deletionTimestamp when finalizers hold it) or a Status. */
export interface DeleteAnswer {
  metadata?: Partial<KubeObject["metadata"]>;
  details?: { uid?: string };
}

export interface KindRef {
  apiVersion: string;
  kind: string;
}

/**
 * What the informer caches of an object: its identity for the informer's own index and the
 * store's entry (the JSON bytes); `rv` is undefined for a resourceVersion that is not a plain
 * decimal (never compared, never served).
 */
export type Cached = KubeObject & { entry: Entry | undefined };

/** The informer's transform: the object (managedFields already dropped) serialised once. */
export function cached(obj: KubeObject): Cached {
  const { namespace, name, uid, resourceVersion, labels } = obj.metadata;
  const rv = revision(resourceVersion);
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: { namespace, name, resourceVersion },
    entry:
      rv === undefined
        ? undefined
        : { name: name ?? "", uid: uid ?? "", rv, labels, json: jsonBytes(JSON.stringify(obj)) },
  };
}

/** Objects per page of the initial list (and of a list after 410 Gone). */
const LIST_PAGE = 500;
/** How long a deletion the cache has not seen yet holds reads back at most. */
const GONE_MS = 30_000;

export class KindCache {
  readonly ref: KindRef;
  readonly store = new ObjectStore();
  /** Every change up to this resourceVersion is in the store (0: not listed yet). */
  private rv = 0;
  /** The store was last brought to a list at this resourceVersion. */
  private epoch = 0;
  private changedAll = 0;
  private readonly changedNs = new Map<string, number>();
  /** The highest resourceVersion a write through this gateway produced. */
  private fence = 0;
  /** Objects deleted through this gateway the cache may still hold: key → their uid. */
  private readonly gone = new Map<string, { uid: string | undefined; at: number }>();
  private waiters = new Set<() => void>();
  private informer: Informer<Cached> | undefined;
  private stopped = false;

  constructor(ref: KindRef) {
    this.ref = ref;
  }

  /** Whether the first list is in. */
  get synced(): boolean {
    return this.rv > 0;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  start(client: KubeClient, log: Logger): void {
    if (this.informer) return;
    const informer = new Informer<Cached>(
      client,
      { ...this.ref, pageSize: LIST_PAGE, transform: cached },
      log.child({ cache: this.ref.kind }),
    );
    informer.on("add", (o) => this.put(o));
    informer.on("update", (o) => this.put(o));
    informer.on("delete", (o) => this.remove(o));
    informer.onProgress((rv, listed) => this.progress(rv, listed));
    this.informer = informer;
    void informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    this.notify();
  }

  /** An object added or changed (by the watch, or found changed by a list). */
  put(o: Cached): void {
    if (!o.entry) return;
    this.store.put(o.metadata.namespace ?? "", o.entry);
    this.changed(o.metadata.namespace ?? "", o.entry.rv);
  }

  /** An object deleted (by the watch: at its deletion's resourceVersion; or missing from a list). */
  remove(o: Cached): void {
    const ns = o.metadata.namespace ?? "";
    this.store.remove(ns, o.metadata.name ?? "");
    this.changed(ns, o.entry?.rv ?? 0);
  }

  /**
   * A namespace changed at `rv`; one found changed by a list (at an older resourceVersion of
   * the object, or none) counts as changed after anything the cache has answered so far.
   */
  private changed(ns: string, rv: number): void {
    const at = Math.max(rv, this.rv + 1);
    this.changedNs.set(ns, at);
    if (at > this.changedAll) this.changedAll = at;
  }

  /**
   * The cache holds every change up to `resourceVersion`; after a list (`listed`) that list
   * is the whole truth at it, and pages of earlier lists can no longer be continued here.
   */
  progress(resourceVersion: string, listed: boolean): void {
    const rv = revision(resourceVersion);
    if (rv === undefined) return; // not comparable: the cache stays where it was
    if (listed) {
      this.rv = rv;
      this.epoch = rv;
      this.changedAll = rv;
      this.changedNs.clear();
    } else if (rv > this.rv) this.rv = rv;
    this.notify();
  }

  /** A create or update through the gateway answered with `obj`: reads wait for the cache to hold it. */
  wrote(obj: KubeObject): void {
    const rv = revision(obj.metadata.resourceVersion);
    if (rv !== undefined && rv > this.fence) this.fence = rv;
  }

  /**
   * A deletion through the gateway of `namespace/name`, answered with `answer`: the object
   * still there with a deletionTimestamp (finalizers hold it), an update like any other;
   * else the object as it was or a Status naming its uid, and reads wait until that object
   * has left the cache (the answer carries no resourceVersion of the deletion to wait for).
   */
  deleted(namespace: string, name: string, answer: DeleteAnswer): void {
    if (answer.metadata?.deletionTimestamp) return this.wrote(answer as KubeObject);
    const uid = answer.metadata?.uid ?? answer.details?.uid;
    this.gone.set(`${namespace}/${name}`, { uid, at: Date.now() });
  }

  /** Whether the cache holds every write made through the gateway. */
  private reached(): boolean {
    if (!this.synced || this.rv < this.fence) return false;
    for (const [key, g] of this.gone) {
      const slash = key.indexOf("/");
      const e = this.store.get(key.slice(0, slash), key.slice(slash + 1));
      if (!e || (g.uid !== undefined && e.uid !== g.uid) || Date.now() - g.at > GONE_MS)
        this.gone.delete(key);
      else return false;
    }
    return true;
  }

  /**
   * Resolves true once the cache has every write made through this gateway; false if that
   * takes longer than `waitMs` (the caller asks the apiserver).
   */
  caughtUp(waitMs: number): Promise<boolean> | boolean {
    if (this.reached()) return true;
    if (waitMs <= 0 || this.stopped) return false;
    return new Promise((resolve) => {
      const check = () => {
        if (!this.reached() && !this.stopped) return;
        done(!this.stopped);
      };
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      const timer = setTimeout(() => done(this.reached()), waitMs);
      this.waiters.add(check);
    });
  }

  /**
   * Whether the objects of `namespace` (all namespaces when undefined) are still as they
   * were at `rv`: the page of a list at `rv` may then be answered from the cache.
   */
  unchangedSince(namespace: string | undefined, rv: number): boolean {
    if (rv < this.epoch || rv > this.rv) return false;
    const changed = namespace === undefined ? this.changedAll : (this.changedNs.get(namespace) ?? 0);
    return changed <= rv;
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) w();
  }
}
