// One kind's objects in every namespace, listed (in pages) and then watched with the
// gateway's own identity, held pre-serialised in an ObjectStore. Besides the objects it knows
// how far it has come (`rv`: every change up to it is in), when each namespace last changed
// (so a continue token's snapshot can be told still current or not), and what this gateway
// wrote (its fence): `caughtUp` waits, bounded, until the writes made through the gateway
// are in, which is what makes a list right after a write see that write.
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { listAndWatch, type WatchEvent } from "../../lib/kube/watch.ts";
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

/** Objects per page of the initial list (and of a list after 410 Gone). */
const LIST_PAGE = 500;
/** How long a deletion the cache has not seen yet holds reads back at most. */
const GONE_MS = 30_000;

export class KindCache {
  readonly ref: KindRef;
  store = new ObjectStore();
  /** Every change up to this resourceVersion is in the store (0: not listed yet). */
  private rv = 0;
  /** The store was last rebuilt from a list at this resourceVersion. */
  private epoch = 0;
  private changedAll = 0;
  private readonly changedNs = new Map<string, number>();
  /** The highest resourceVersion a write through this gateway produced. */
  private fence = 0;
  /** Objects deleted through this gateway the cache may still hold: key → their uid. */
  private readonly gone = new Map<string, { uid: string | undefined; at: number }>();
  private waiters = new Set<() => void>();
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;

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
    const path = client.collectionPath(this.ref.apiVersion, this.ref.kind);
    this.running ??= listAndWatch(
      client,
      { path, signal: this.stopper.signal, log: log.child({ cache: this.ref.kind }) },
      { list: () => this.relist(client), event: (e) => this.apply(e) },
    );
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
    this.notify();
  }

  private async relist(client: KubeClient): Promise<string> {
    const store = new ObjectStore();
    let listRv: string | undefined;
    let next: string | undefined;
    do {
      const page = await client.list<KubeObject>(this.ref.apiVersion, this.ref.kind, undefined, {
        limit: LIST_PAGE,
        ...(next ? { continue: next } : {}),
      });
      listRv ??= page.metadata.resourceVersion;
      for (const item of page.items) this.put(store, item);
      next = page.metadata.continue;
    } while (next);
    this.reset(store, listRv ?? "");
    return listRv ?? "";
  }

  /** Takes a freshly listed store as the whole truth at `listRv`. */
  reset(store: ObjectStore, listRv: string): void {
    const rv = revision(listRv) ?? 0;
    this.store = store;
    this.rv = rv;
    this.epoch = rv;
    this.changedAll = rv;
    this.changedNs.clear();
    this.notify();
  }

  /** A watch event. */
  apply(e: WatchEvent): void {
    const rv = revision(e.object.metadata?.resourceVersion);
    if (rv === undefined) return; // not comparable: the cache stays where it was
    if (e.type !== "BOOKMARK") {
      const ns = e.object.metadata.namespace ?? "";
      if (e.type === "DELETED") this.store.remove(ns, e.object.metadata.name ?? "");
      else this.put(this.store, e.object);
      this.changedNs.set(ns, rv);
      this.changedAll = rv;
    }
    if (rv > this.rv) this.rv = rv;
    this.notify();
  }

  private put(store: ObjectStore, obj: KubeObject): void {
    const rv = revision(obj.metadata.resourceVersion);
    if (rv === undefined) return;
    delete obj.metadata.managedFields;
    obj.apiVersion ??= this.ref.apiVersion;
    obj.kind ??= this.ref.kind;
    const entry: Entry = {
      name: obj.metadata.name ?? "",
      uid: obj.metadata.uid ?? "",
      rv,
      labels: obj.metadata.labels,
      json: jsonBytes(JSON.stringify(obj)),
    };
    store.put(obj.metadata.namespace ?? "", entry);
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
    if (waitMs <= 0 || this.stopper.signal.aborted) return false;
    return new Promise((resolve) => {
      const check = () => {
        if (!this.reached() && !this.stopper.signal.aborted) return;
        done(!this.stopper.signal.aborted);
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
