// A shared informer: one list+watch per resource (optionally per namespace and label
// selector) feeding an in-memory cache and event handlers, on the project's own client.
// The first list is read in pages; the watch resumes from the last resourceVersion seen
// (bookmarks included) and a 410 Gone starts over with a list, whose differences from
// the cache reach the handlers as adds, updates and deletes. Every object is cached
// without managedFields and, with a `transform`, as the projection the controllers read
// (so a Pod costs what its status needs, not its whole spec), or asked for as metadata
// only. Errors, and a watch that ends at once with nothing in it, restart the watch with
// backoff; waitForSync() tells when the first list has been delivered, and progress
// listeners how far the cache has come (every event and bookmark, every completed list).
import type { KubeClient, KubeList, KubeObject } from "./client.ts";
import type { StringPool } from "./intern.ts";
import { Watch, type WatchEventType, type WatchHandle, type WatchStatus } from "./watch.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../log.ts";

export type Handler<T> = (obj: T, old?: T) => void;

/**
 * The cache holds every change up to `resourceVersion`: after each watch event or bookmark,
 * and after each completed list (`listed`; the handlers have had its differences).
 */
export type ProgressListener = (resourceVersion: string, listed: boolean) => void;

const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** Watch one namespace only; all namespaces when undefined. */
  namespace?: string;
  labelSelector?: string;
  /**
   * What the cache keeps of each object (managedFields are always dropped): a projection
   * to the fields the controllers read. It receives a fresh object it may change or drop.
   */
  transform?: (obj: KubeObject) => KubeObject;
  /** Objects per page of a list (default 500). */
  pageSize?: number;
  /** List and watch PartialObjectMetadata only (when what changed matters, not the objects). */
  metadataOnly?: boolean;
  /** Keeps one copy of the strings that repeat across cached objects (see intern.ts). */
  strings?: StringPool;
}

/** The apiserver's longest watch is about this long; each watch asks for a random share of it. */
const WATCH_SECONDS = 300;

export class Informer<T extends KubeObject> implements SharedInformer<T> {
  readonly kind: string;
  private readonly client: KubeClient;
  private readonly options: InformerOptions;
  private readonly path: string;
  private readonly handlers = {
    add: [] as Handler<T>[],
    update: [] as Handler<T>[],
    delete: [] as Handler<T>[],
  };
  private readonly progress: ProgressListener[] = [];
  /** The cache, by namespace and then name (cluster-scoped objects under ""). */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private resourceVersion = "";
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private stopped = false;
  private watching: WatchHandle | undefined;
  private retry: NodeJS.Timeout | undefined;
  private restartDelay = 500;
  private readonly log: Logger;

  constructor(client: KubeClient, options: InformerOptions, log: Logger) {
    this.kind = options.kind;
    this.client = client;
    this.options = options;
    this.path = client.collectionPath(options.apiVersion, options.kind, options.namespace);
    this.log = log.child({ informer: options.kind, namespace: options.namespace ?? "*" });
  }

  get everyObject(): boolean {
    return !this.options.labelSelector;
  }

  on(event: "add" | "update" | "delete", handler: Handler<T>): void {
    this.handlers[event].push(handler);
  }

  onProgress(listener: ProgressListener): void {
    this.progress.push(listener);
  }

  start(): Promise<void> {
    this.stopped = false;
    return this.run(true);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.byNamespace.get(namespace ?? "")?.get(name);
  }

  list(namespace?: string): readonly T[] {
    if (namespace !== undefined) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const objects of this.byNamespace.values()) for (const o of objects.values()) out.push(o);
    return out;
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.watching?.abort();
    this.watching = undefined;
    return Promise.resolve();
  }

  /**
   * Lists (when asked or needed) and starts the watch, which runs on after this returns;
   * on failure, tries again after a backoff.
   */
  private async run(relist: boolean): Promise<void> {
    if (this.stopped) return;
    try {
      if (relist || !this.resourceVersion) await this.relist();
    } catch (err) {
      return this.again(true, err);
    }
    if (!this.synced) {
      this.synced = true;
      this.syncWaiters.forEach((w) => w());
      this.syncWaiters = [];
    }
    this.watch();
  }

  /** Runs again after the backoff (which grows while failing and resets after a good watch). */
  private again(relist: boolean, err?: unknown): void {
    if (this.stopped) return;
    if (err !== undefined)
      this.log.warn(relist ? "list failed; retrying" : "watch failed; restarting", {
        error: errorMessage(err),
        retryInMs: this.restartDelay,
      });
    this.retry = setTimeout(() => void this.run(relist), err === undefined ? 0 : this.restartDelay);
    this.retry.unref();
    if (err !== undefined) this.restartDelay = Math.min(this.restartDelay * 2, 5_000);
  }

  /** Lists every page and brings the cache to it; what vanished is reported deleted. */
  private async relist(): Promise<void> {
    const seen = new Set<string>();
    let next: string | undefined;
    let rv = "";
    do {
      const page = await this.client.request<KubeList<KubeObject>>("GET", this.path, {
        query: {
          labelSelector: this.options.labelSelector,
          limit: this.options.pageSize ?? 500,
          continue: next,
        },
        ...(this.options.metadataOnly ? { accept: METADATA_LIST } : {}),
      });
      rv ||= page.metadata.resourceVersion ?? "";
      next = page.metadata.continue || undefined;
      // An empty PartialObjectMetadataList comes without its items.
      const items = page.items ?? [];
      for (const item of items) {
        const obj = this.upsert(item);
        seen.add(`${obj.metadata.namespace ?? ""}/${obj.metadata.name}`);
      }
      // A page is garbage once its objects are cached: let it go before the next one.
      items.length = 0;
    } while (next);
    for (const [namespace, objects] of this.byNamespace)
      for (const [name, obj] of objects) if (!seen.has(`${namespace}/${name}`)) this.remove(obj);
    this.resourceVersion = rv;
    for (const p of this.progress) p(rv, true);
  }

  private watch(): void {
    let ended = false;
    let gone = false;
    let events = 0;
    const started = Date.now();
    const onEvent = (type: WatchEventType, obj: KubeObject & WatchStatus) => {
      events++;
      switch (type) {
        case "ADDED":
        case "MODIFIED":
          this.upsert(obj);
          break;
        case "DELETED":
          this.remove(this.prepare(obj));
          break;
        case "BOOKMARK":
          break;
        case "ERROR":
          if (obj.code === 410) gone = true;
          else this.log.warn("watch error", { code: obj.code, reason: obj.reason, message: obj.message });
          return;
      }
      const rv = obj.metadata?.resourceVersion;
      if (rv) {
        this.resourceVersion = rv;
        for (const p of this.progress) p(rv, false);
      }
    };
    const done = (err?: unknown) => {
      ended = true;
      this.watching = undefined;
      if (this.stopped) return;
      // A watch that ran a while (or delivered events) was healthy: start the backoff over.
      if (events > 0 || Date.now() - started > 10_000) this.restartDelay = 500;
      if (gone) {
        this.resourceVersion = "";
        this.again(true);
      } else if (err) this.again(false, err);
      // An apiserver going away may accept a watch and end it at once: not a tight loop.
      else if (events === 0 && Date.now() - started < 1000)
        this.again(false, new Error("the watch ended at once"));
      else this.again(false);
    };
    new Watch(this.client)
      .watch(
        this.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: this.options.labelSelector,
          timeoutSeconds: Math.round(WATCH_SECONDS * (1 + Math.random())),
        },
        onEvent,
        done,
        this.options.metadataOnly ? METADATA : undefined,
      )
      .then((handle) => {
        if (this.stopped) handle.abort();
        else if (!ended) this.watching = handle;
      })
      .catch((err: unknown) => this.again(false, err));
  }

  /** The object as cached: without managedFields, with its kind, projected by the transform. */
  private prepare(raw: KubeObject): T {
    if (this.options.metadataOnly) {
      // PartialObjectMetadata: cached as the kind it stands for.
      raw.apiVersion = this.options.apiVersion;
      raw.kind = this.options.kind;
    }
    raw.apiVersion ??= this.options.apiVersion;
    raw.kind ??= this.options.kind;
    // Copied without it, not deleted: a delete leaves the object in V8's slow dictionary mode.
    if (raw.metadata?.managedFields !== undefined) {
      const { managedFields: _, ...metadata } = raw.metadata;
      raw.metadata = metadata;
    }
    this.options.strings?.object(raw);
    return (this.options.transform ? this.options.transform(raw) : raw) as T;
  }

  private upsert(raw: KubeObject): T {
    const obj = this.prepare(raw);
    const namespace = obj.metadata.namespace ?? "";
    let objects = this.byNamespace.get(namespace);
    if (!objects) this.byNamespace.set(namespace, (objects = new Map<string, T>()));
    const old = objects.get(obj.metadata.name!);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return old;
    objects.set(obj.metadata.name!, obj);
    if (old) for (const h of this.handlers.update) h(obj, old);
    else for (const h of this.handlers.add) h(obj);
    return obj;
  }

  private remove(obj: T): void {
    const namespace = obj.metadata.namespace ?? "";
    const objects = this.byNamespace.get(namespace);
    if (!objects?.delete(obj.metadata.name!)) return;
    if (objects.size === 0) this.byNamespace.delete(namespace);
    for (const h of this.handlers.delete) h(obj);
  }
}

export function keyOf(obj: { metadata: { namespace?: string; name?: string } }): string {
  return obj.metadata.namespace
    ? `${obj.metadata.namespace}/${obj.metadata.name}`
    : (obj.metadata.name ?? "");
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** What controllers need from an informer, whether it watches one namespace or several. */
export interface SharedInformer<T extends KubeObject> {
  on(event: "add" | "update" | "delete", handler: Handler<T>): void;
  get(namespace: string | undefined, name: string): T | undefined;
  list(namespace?: string): readonly T[];
  start(): Promise<void>;
  stop(): Promise<void>;
  waitForSync(): Promise<void>;
  readonly hasSynced: boolean;
  /**
   * The cache holds every object of its kind in the namespaces it watches (no label
   * selector): once synced, a name it lacks is free and a name it holds is taken, as far as
   * a read would have told a moment ago.
   */
  readonly everyObject?: boolean;
}

/** One informer per namespace behind the SharedInformer interface (namespace-scoped installs). */
class NamespacedInformers<T extends KubeObject> implements SharedInformer<T> {
  private readonly byNamespace: Map<string, Informer<T>>;
  constructor(informers: Map<string, Informer<T>>) {
    this.byNamespace = informers;
  }
  on(event: "add" | "update" | "delete", handler: Handler<T>): void {
    for (const inf of this.byNamespace.values()) inf.on(event, handler);
  }
  get(namespace: string | undefined, name: string): T | undefined {
    return namespace ? this.byNamespace.get(namespace)?.get(namespace, name) : undefined;
  }
  list(namespace?: string): readonly T[] {
    if (namespace) return this.byNamespace.get(namespace)?.list(namespace) ?? [];
    return [...this.byNamespace.values()].flatMap((inf) => inf.list());
  }
  async start(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((inf) => inf.start()));
  }
  async stop(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((inf) => inf.stop()));
  }
  async waitForSync(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((inf) => inf.waitForSync()));
  }
  get hasSynced(): boolean {
    return [...this.byNamespace.values()].every((inf) => inf.hasSynced);
  }
  get everyObject(): boolean {
    return [...this.byNamespace.values()].every((inf) => inf.everyObject);
  }
}

/** An informer over all namespaces, or over the listed ones only. */
export function createInformer<T extends KubeObject>(
  client: KubeClient,
  options: Omit<InformerOptions, "namespace">,
  namespaces: string[] | undefined,
  log: Logger,
): SharedInformer<T> {
  if (!namespaces || namespaces.length === 0) return new Informer<T>(client, options, log);
  return new NamespacedInformers(
    new Map(namespaces.map((ns) => [ns, new Informer<T>(client, { ...options, namespace: ns }, log)])),
  );
}
