// The gateway's read cache: one KindCache per agentry kind over every namespace, and the
// list and get answers built from it, byte for byte what the routes would send after asking
// the apiserver, or the reason they cannot be (the route then asks the apiserver as the
// caller). Whether the caller may read is decided before, by the routes (SubjectAccessReview).
import type { KindDefinition } from "../../api/v1alpha1/index.ts";
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import type { Logger } from "../../lib/log.ts";
import { decodeContinue, encodeContinue, type ContinueToken } from "./continue.ts";
import { KindCache, type DeleteAnswer } from "./kindcache.ts";
import { jsonArray } from "./objects.ts";
import { parseSelector, type Selector } from "./selector.ts";

export interface ListQuery {
  limit?: number;
  continue?: string;
  labelSelector?: string;
}

/** Why an answer did not come from the cache (a metric label). */
export type Miss =
  | "unsynced" // the first list is not in yet
  | "behind" // the cache did not reach the gateway's writes in time, or a token's list
  | "changed" // a continue token's list is no longer what the cache holds
  | "token" // a continue token of another format
  | "selector" // a label selector the cache does not read
  | "absent"; // the object is not in the cache (the apiserver gives the answer, 404 or not)

/** What the cache answered, or why it could not. */
export type Served<T> = ({ ok: true } & T) | { ok: false; reason: Miss };

export interface Page {
  /** The items as a JSON array. */
  items: Buffer;
  /** How many (-1: every object of the namespace, not counted). */
  count: number;
  resourceVersion: string;
  continue?: string;
  /** How many objects follow the page (with `continue`, for a list without a label selector). */
  remainingItemCount?: number;
}

export interface ReadCacheOptions {
  /** How long a read waits for the cache to hold the gateway's own writes (default 1 s). */
  waitMs?: number;
}

const miss = (reason: Miss) => ({ ok: false, reason }) as const;

const END = Buffer.from("}");

/** A `<Kind>List` as the routes send it: apiVersion, kind, metadata, then the items (a JSON array). */
export function listJson(
  def: KindDefinition,
  metadata: { resourceVersion?: string; continue?: string },
  items: Buffer,
): Buffer {
  const head = `{"apiVersion":${JSON.stringify(def.apiVersion)},"kind":"${def.kind}List","metadata":${JSON.stringify(metadata)},"items":`;
  return Buffer.concat([Buffer.from(head), items, END]);
}

/** A list query's continue token and label selector, read; or why the cache cannot answer it. */
function pageQuery(
  namespace: string | undefined,
  q: ListQuery,
): Served<{ token: ContinueToken | undefined; match: Selector }> {
  let token: ContinueToken | undefined;
  if (q.continue !== undefined) {
    token = decodeContinue(q.continue);
    if (!token || (namespace === undefined && !token.start.includes("/"))) return miss("token");
  }
  try {
    return { ok: true, token, match: parseSelector(q.labelSelector) };
  } catch {
    return miss("selector");
  }
}

/** The page a query asks for, from a cache that has caught up. */
function pageOf(
  kc: KindCache,
  namespace: string | undefined,
  q: ListQuery,
  { token, match }: { token: ContinueToken | undefined; match: Selector },
): Served<Page> {
  // A token's list the cache has not reached yet (the apiserver's, at etcd's revision) is not
  // waited for: the watch may bring nothing of this kind for a while.
  if (token && !kc.unchangedSince(namespace, token.rv))
    return miss(token.rv > kc.resourceVersion ? "behind" : "changed");
  const rv = token?.rv ?? kc.resourceVersion;
  if (!token && q.limit === undefined && !q.labelSelector && namespace !== undefined)
    return { ok: true, items: kc.store.all(namespace), count: -1, resourceVersion: String(rv) };
  const page = kc.store.page(namespace, match, q.limit, token?.start);
  return {
    ok: true,
    items: jsonArray(page.items),
    count: page.items.length,
    resourceVersion: String(rv),
    ...(page.more !== undefined ? { continue: encodeContinue(rv, page.more) } : {}),
    // As the apiserver: how many follow, for a list without a selector only.
    ...(page.more !== undefined && !q.labelSelector ? { remainingItemCount: page.remaining } : {}),
  };
}

/** One object from a cache that has caught up, with its ETag. */
function entryOf(kc: KindCache, namespace: string, name: string): Served<{ body: Buffer; etag: string }> {
  const e = kc.store.get(namespace, name);
  if (!e) return miss("absent");
  return { ok: true, body: e.json, etag: `"${e.rv}"` };
}

export class ReadCache {
  private readonly kinds = new Map<string, KindCache>();
  /** List answers by the items they hold (a namespace's, kept by the store until it changes). */
  private readonly bodies = new WeakMap<Buffer, { resourceVersion: string; body: Buffer }>();
  private readonly waitMs: number;

  constructor(defs: readonly KindDefinition[], options: ReadCacheOptions = {}) {
    for (const d of defs) this.kinds.set(d.kind, new KindCache({ apiVersion: d.apiVersion, kind: d.kind }));
    this.waitMs = options.waitMs ?? 1000;
  }

  /** The cache of one kind (by its Kind). */
  kind(kind: string): KindCache | undefined {
    return this.kinds.get(kind);
  }

  start(client: KubeClient, log: Logger): void {
    for (const k of this.kinds.values()) k.start(client, log);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.kinds.values()].map((k) => k.stop()));
  }

  /** Objects and serialised bytes held, per kind (for the metrics). */
  sizes(): { kind: string; objects: number; bytes: number }[] {
    return [...this.kinds.values()].map((k) => ({
      kind: k.ref.kind,
      objects: k.store.size,
      bytes: k.store.bytes,
    }));
  }

  get synced(): boolean {
    return [...this.kinds.values()].every((k) => k.synced);
  }

  /** The answer to a create or update made through the gateway (see KindCache.wrote). */
  wrote(kind: string, obj: KubeObject): void {
    this.kinds.get(kind)?.wrote(obj);
  }

  /** The answer to a deletion made through the gateway (see KindCache.deleted). */
  deleted(kind: string, namespace: string, name: string, answer: DeleteAnswer): void {
    this.kinds.get(kind)?.deleted(namespace, name, answer);
  }

  /** A list answer of `def` in `namespace` (all namespaces when undefined). */
  async list(
    def: KindDefinition,
    namespace: string | undefined,
    q: ListQuery,
  ): Promise<Served<{ body: Buffer }>> {
    return this.listBody(def, await this.page(def, namespace, q));
  }

  /** The list answer at once, or undefined when it would wait for the cache to catch up (see list). */
  listNow(
    def: KindDefinition,
    namespace: string | undefined,
    q: ListQuery,
  ): Served<{ body: Buffer }> | undefined {
    const p = this.pageNow(def, namespace, q);
    return p && this.listBody(def, p);
  }

  private listBody(def: KindDefinition, p: Served<Page>): Served<{ body: Buffer }> {
    if (!p.ok) return p;
    // A whole namespace's answer is kept with its items until the cache moves on.
    const kept = this.bodies.get(p.items);
    if (kept?.resourceVersion === p.resourceVersion) return { ok: true, body: kept.body };
    // The keys in the order the apiserver path sends them (routes/resources.ts listBody).
    const metadata = {
      resourceVersion: p.resourceVersion,
      ...(p.continue ? { continue: p.continue } : {}),
      ...(p.remainingItemCount !== undefined ? { remainingItemCount: p.remainingItemCount } : {}),
    };
    const body = listJson(def, metadata, p.items);
    if (p.count < 0) this.bodies.set(p.items, { resourceVersion: p.resourceVersion, body });
    return { ok: true, body };
  }

  /** A page of a list: its items as a JSON array, its resourceVersion and continue token. */
  async page(def: KindDefinition, namespace: string | undefined, q: ListQuery): Promise<Served<Page>> {
    const kc = this.kinds.get(def.kind)!;
    const asked = pageQuery(namespace, q);
    if (!asked.ok) return asked;
    if (!(await kc.caughtUp(this.waitMs))) return miss(kc.synced ? "behind" : "unsynced");
    return pageOf(kc, namespace, q, asked);
  }

  /** The page at once, or undefined when it would wait for the cache to catch up (see page). */
  pageNow(def: KindDefinition, namespace: string | undefined, q: ListQuery): Served<Page> | undefined {
    const kc = this.kinds.get(def.kind)!;
    const asked = pageQuery(namespace, q);
    if (!asked.ok) return asked;
    if (kc.caughtUp(0) !== true) return undefined;
    return pageOf(kc, namespace, q, asked);
  }

  /** One object, with its ETag. */
  async get(
    def: KindDefinition,
    namespace: string,
    name: string,
  ): Promise<Served<{ body: Buffer; etag: string }>> {
    const kc = this.kinds.get(def.kind)!;
    if (!(await kc.caughtUp(this.waitMs))) return miss(kc.synced ? "behind" : "unsynced");
    return entryOf(kc, namespace, name);
  }

  /** The object at once, or undefined when it would wait for the cache to catch up (see get). */
  getNow(
    def: KindDefinition,
    namespace: string,
    name: string,
  ): Served<{ body: Buffer; etag: string }> | undefined {
    const kc = this.kinds.get(def.kind)!;
    return kc.caughtUp(0) === true ? entryOf(kc, namespace, name) : undefined;
  }

  /** Namespaces holding objects of the kind, by name (for lists across namespaces). */
  namespaces(kind: string): string[] {
    return [...(this.kinds.get(kind)?.store.namespaces() ?? [])].sort();
  }
}
