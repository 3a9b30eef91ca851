// A shared informer: one list+watch per resource (optionally per namespace and label
// selector) feeding an in-memory cache and event handlers. Built on client-node's
// ListWatch, which re-lists on 410 Gone; this wrapper strips managedFields to keep the
// cache small, restarts the watch with backoff after any other error (apiserver restart),
// and tells when the first list has been delivered.
import { ListWatch, Watch, type KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient, KubeObject } from "./client.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../log.ts";

export type Handler<T> = (obj: T, old?: T) => void;

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** Watch one namespace only; all namespaces when undefined. */
  namespace?: string;
  labelSelector?: string;
}

function strip<T extends KubeObject>(obj: T): T {
  if (obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

export class Informer<T extends KubeObject> {
  readonly kind: string;
  // client-node types timestamps as Date; the JSON actually holds strings, as KubeObject says.
  private readonly lw: ListWatch<KubernetesObject>;
  private readonly handlers = {
    add: [] as Handler<T>[],
    update: [] as Handler<T>[],
    delete: [] as Handler<T>[],
  };
  private readonly old = new Map<string, T>();
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private stopped = false;
  private restartDelay = 500;
  private startedAt = 0;
  private readonly log: Logger;

  constructor(client: KubeClient, options: InformerOptions, log: Logger) {
    this.kind = options.kind;
    this.log = log.child({ informer: options.kind, namespace: options.namespace ?? "*" });
    const path = client.collectionPath(options.apiVersion, options.kind, options.namespace);
    const listFn = async () => {
      const list = await client.list<T>(options.apiVersion, options.kind, options.namespace, {
        labelSelector: options.labelSelector,
      });
      list.items.forEach((item) => {
        item.apiVersion ??= options.apiVersion;
        item.kind ??= options.kind;
        strip(item);
      });
      return list as never;
    };
    this.lw = new ListWatch<KubernetesObject>(
      path,
      new Watch(client.kubeConfig),
      listFn,
      false,
      options.labelSelector,
    );
    this.lw.on("add", (raw) => {
      const obj = raw as unknown as T;
      strip(obj);
      obj.apiVersion ??= options.apiVersion;
      obj.kind ??= options.kind;
      this.old.set(keyOf(obj), obj);
      for (const h of this.handlers.add) h(obj);
    });
    this.lw.on("update", (raw) => {
      const obj = raw as unknown as T;
      strip(obj);
      obj.apiVersion ??= options.apiVersion;
      obj.kind ??= options.kind;
      const key = keyOf(obj);
      const previous = this.old.get(key);
      this.old.set(key, obj);
      for (const h of this.handlers.update) h(obj, previous);
    });
    this.lw.on("delete", (raw) => {
      const obj = raw as unknown as T;
      this.old.delete(keyOf(obj));
      for (const h of this.handlers.delete) h(obj);
    });
    this.lw.on("error", (err) => {
      if (this.stopped) return;
      // Back off while failing; start over once a watch has run for a while. (ListWatch's
      // "connect" fires before each attempt, so resetting there never let the delay grow.)
      if (Date.now() - this.startedAt >= 10_000) this.restartDelay = 500;
      const msg = errorMessage(err);
      this.log.warn("watch failed; restarting", { error: msg, retryInMs: this.restartDelay });
      setTimeout(() => void this.startWatch(), this.restartDelay).unref();
      this.restartDelay = Math.min(this.restartDelay * 2, 5_000);
    });
  }

  on(event: "add" | "update" | "delete", handler: Handler<T>): void {
    this.handlers[event].push(handler);
  }

  async start(): Promise<void> {
    await this.startWatch();
  }

  private async startWatch(): Promise<void> {
    if (this.stopped) return;
    this.startedAt = Date.now();
    try {
      await this.lw.start();
      // ListWatch reports a failed list through the error handler, not by throwing:
      // the cache is synced only once a list has produced a resourceVersion.
      if (!this.synced && this.lw.latestResourceVersion() !== "") {
        this.synced = true;
        this.syncWaiters.forEach((w) => w());
        this.syncWaiters = [];
      }
    } catch (err) {
      const msg = errorMessage(err);
      this.log.warn("list failed; retrying", { error: msg, retryInMs: this.restartDelay });
      setTimeout(() => void this.startWatch(), this.restartDelay).unref();
      this.restartDelay = Math.min(this.restartDelay * 2, 5_000);
    }
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.lw.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace) as unknown as readonly T[];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.lw.stop();
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
