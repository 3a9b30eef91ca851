// Fakes for reconciler unit tests: informers fed by the test, and a client that records
// every call and plays it into those informers the way the apiserver and a watch would
// (uids, resourceVersions, status writes, deletes). Reconcilers see the same interfaces
// (SharedInformer, KubeApi, Recorder) as in the operator; the integration and end-to-end
// tests keep running on the real control plane. Objects in a FakeInformer are deeply
// frozen, so a reconciler that changes what its cache hands out fails here; and its watch
// can be made to lag (hold/release), so a reconciler that trusts its cache to show its own
// last write at once fails here too.
import { ApiError, type KubeApi, type KubeList, type KubeObject } from "../../lib/kube/client.ts";
import type { Recorder } from "../../lib/kube/events.ts";
import { keyOf, type Handler, type SharedInformer } from "../../lib/kube/informer.ts";
import { deepFreeze } from "../../lib/kube/typed.ts";

type Event = "add" | "update" | "delete";

export class FakeInformer<T extends KubeObject = KubeObject> implements SharedInformer<T> {
  readonly kind: string;
  /** What the cache shows. */
  private readonly objects = new Map<string, T>();
  /** What the apiserver holds (ahead of the cache while it is held back). */
  private readonly truth = new Map<string, T>();
  private readonly handlers: Record<Event, Handler<T>[]> = { add: [], update: [], delete: [] };
  /** Changes not delivered yet while the watch lags (hold()). */
  private held: (() => void)[] | undefined;

  constructor(kind: string, objects: T[] = []) {
    this.kind = kind;
    for (const o of objects) {
      const stored = deepFreeze(structuredClone(o));
      this.objects.set(keyOf(o), stored);
      this.truth.set(keyOf(o), stored);
    }
  }

  /** Puts `obj` in the cache (a copy, frozen) and tells the handlers, as a watch event would. */
  set(obj: T): T {
    const key = keyOf(obj);
    const stored = deepFreeze(structuredClone(obj));
    this.truth.set(key, stored);
    this.deliver(() => {
      const old = this.objects.get(key);
      this.objects.set(key, stored);
      for (const h of this.handlers[old ? "update" : "add"]) h(stored, old);
    });
    return stored;
  }

  remove(namespace: string | undefined, name: string): void {
    const key = namespace ? `${namespace}/${name}` : name;
    if (!this.truth.delete(key)) return;
    this.deliver(() => {
      const old = this.objects.get(key);
      if (!old) return;
      this.objects.delete(key);
      for (const h of this.handlers.delete) h(old);
    });
  }

  /** From now on the cache lags: changes reach it (and the handlers) only at release(). */
  hold(): void {
    this.held ??= [];
  }

  /** Delivers what was held back, in order, and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const deliver of held) deliver();
  }

  private deliver(change: () => void): void {
    if (this.held) this.held.push(change);
    else change();
  }

  /** The object as the apiserver has it, whether or not the cache shows it yet. */
  latest(namespace: string | undefined, name: string): T | undefined {
    return this.truth.get(namespace ? `${namespace}/${name}` : name);
  }

  latestList(namespace?: string): readonly T[] {
    const all = [...this.truth.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  on(event: Event, handler: Handler<T>): void {
    this.handlers[event].push(handler);
  }
  get(namespace: string | undefined, name: string): T | undefined {
    return this.objects.get(namespace ? `${namespace}/${name}` : name);
  }
  list(namespace?: string): readonly T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  waitForSync(): Promise<void> {
    return Promise.resolve();
  }
  readonly hasSynced = true;
}

/** One recorded call of the client. */
export interface Call {
  verb: "get" | "list" | "create" | "apply" | "replace" | "patch" | "delete";
  kind: string;
  namespace?: string;
  name?: string;
  subresource?: string;
  body?: unknown;
}

const notFound = (kind: string, name: string | undefined) =>
  new ApiError(404, "NotFound", `${kind} "${name ?? ""}" not found`);

/**
 * A KubeApi over FakeInformers (by kind): reads come from them, writes land in them. Kinds
 * without an informer are remembered in a side store, so a write is never lost.
 */
export class RecordingClient implements KubeApi {
  readonly calls: Call[] = [];
  private readonly informers = new Map<string, FakeInformer>();
  private readonly others = new Map<string, FakeInformer>();
  private seq = 0;
  /** Makes the next write of this verb and kind fail with this error (once). */
  private readonly failures: { verb: Call["verb"]; kind: string; err: Error }[] = [];
  /** Writes made while holding, not yet in the informers (their watch events are late). */
  private held: (() => void)[] | undefined;

  constructor(informers: FakeInformer[]) {
    for (const inf of informers) this.informers.set(inf.kind, inf);
  }

  failNext(verb: Call["verb"], kind: string, err: Error): void {
    this.failures.push({ verb, kind, err });
  }

  /** From now on, writes reach the informers only at deliver(), as if their watch events were late. */
  hold(): void {
    this.held ??= [];
  }

  /** Lets the held writes reach the informers (in order) and stops holding. */
  deliver(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const land of held) land();
  }

  /** Puts a write into the informers now, or at deliver() while holding. */
  private land<T>(obj: T, put: () => void): T {
    if (this.held) this.held.push(put);
    else put();
    return obj;
  }

  /** The writes so far (every call but get and list). */
  writes(): Call[] {
    return this.calls.filter((c) => c.verb !== "get" && c.verb !== "list");
  }

  clear(): void {
    this.calls.length = 0;
  }

  private store(kind: string): FakeInformer {
    const known = this.informers.get(kind);
    if (known) return known;
    let other = this.others.get(kind);
    if (!other) this.others.set(kind, (other = new FakeInformer(kind)));
    return other;
  }

  private record(call: Call): void {
    this.calls.push(call);
    const i = this.failures.findIndex((f) => f.verb === call.verb && f.kind === call.kind);
    if (i >= 0) throw this.failures.splice(i, 1)[0]!.err;
  }

  private stamp<T extends KubeObject>(obj: T, prior: KubeObject | undefined): T {
    this.seq += 1;
    return {
      ...obj,
      metadata: {
        ...obj.metadata,
        uid: prior?.metadata.uid ?? obj.metadata.uid ?? `uid-${obj.kind.toLowerCase()}-${this.seq}`,
        resourceVersion: String(this.seq),
        creationTimestamp: prior?.metadata.creationTimestamp ?? "2026-01-01T00:00:00Z",
      },
    };
  }

  get<T extends KubeObject>(_apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    this.record({ verb: "get", kind, ...(namespace ? { namespace } : {}), name });
    const found = this.store(kind).latest(namespace, name);
    return found ? Promise.resolve(structuredClone(found) as T) : Promise.reject(notFound(kind, name));
  }

  list<T extends KubeObject>(_apiVersion: string, kind: string, namespace?: string): Promise<KubeList<T>> {
    this.record({ verb: "list", kind, ...(namespace ? { namespace } : {}) });
    const items = this.store(kind)
      .latestList(namespace)
      .map((o) => structuredClone(o) as T);
    return Promise.resolve({ apiVersion: "v1", kind: `${kind}List`, metadata: {}, items });
  }

  create<T extends KubeObject>(obj: T): Promise<T> {
    const { namespace, name } = obj.metadata;
    this.record({ verb: "create", kind: obj.kind, namespace, name, body: obj });
    const store = this.store(obj.kind);
    if (store.latest(namespace, name!))
      return Promise.reject(new ApiError(409, "AlreadyExists", `${obj.kind} "${name}" already exists`));
    const stamped = this.stamp(obj, undefined);
    return Promise.resolve(this.land(stamped, () => store.set(stamped)));
  }

  apply<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    const { namespace, name } = obj.metadata;
    this.record({
      verb: "apply",
      kind: obj.kind,
      namespace,
      name,
      ...(subresource ? { subresource } : {}),
      body: obj,
    });
    const store = this.store(obj.kind);
    const prior = store.latest(namespace, name!);
    if (subresource === "status") {
      if (!prior) return Promise.reject(notFound(obj.kind, name));
      const stamped = this.stamp({ ...prior, status: obj["status"] }, prior) as unknown as T;
      return Promise.resolve(this.land(stamped, () => store.set(stamped)));
    }
    if (prior && obj.metadata.uid && prior.metadata.uid !== obj.metadata.uid)
      return Promise.reject(
        new ApiError(409, "Conflict", `the uid precondition of ${obj.kind} ${name} failed`),
      );
    const { uid: _uid, ...meta } = obj.metadata;
    const merged = this.stamp({ ...prior, ...obj, metadata: { ...prior?.metadata, ...meta } }, prior);
    return Promise.resolve(this.land(merged, () => store.set(merged)));
  }

  replace<T extends KubeObject>(obj: T): Promise<T> {
    const { namespace, name } = obj.metadata;
    this.record({ verb: "replace", kind: obj.kind, namespace, name, body: obj });
    const store = this.store(obj.kind);
    const prior = store.latest(namespace, name!);
    if (!prior) return Promise.reject(notFound(obj.kind, name));
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== prior.metadata.resourceVersion)
      return Promise.reject(new ApiError(409, "Conflict", `${obj.kind} ${name} was changed since ${rv}`));
    const replaced = this.stamp(obj, prior);
    return Promise.resolve(this.land(replaced, () => store.set(replaced)));
  }

  mergePatch<T extends KubeObject>(
    target: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    const { namespace, name } = target.metadata;
    this.record({
      verb: "patch",
      kind: target.kind,
      namespace,
      name,
      ...(subresource ? { subresource } : {}),
      body: patch,
    });
    const store = this.store(target.kind);
    const prior = store.latest(namespace, name!);
    if (!prior) return Promise.reject(notFound(target.kind, name));
    const patched = this.stamp(mergeJson(prior, patch) as KubeObject, prior) as T;
    return Promise.resolve(this.land(patched, () => store.set(patched)));
  }

  delete(
    target: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    options: { uid?: string } = {},
  ): Promise<boolean> {
    const { namespace, name } = target.metadata;
    this.record({ verb: "delete", kind: target.kind, namespace, name });
    const store = this.store(target.kind);
    const prior = store.latest(namespace, name!);
    if (!prior || (options.uid && prior.metadata.uid !== options.uid)) return Promise.resolve(false);
    return Promise.resolve(this.land(true, () => store.remove(namespace, name!)));
  }
}

/** RFC 7386 merge patch. */
function mergeJson(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergeJson(out[k], v);
  }
  return out;
}

export interface RecordedEvent {
  object: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** A Recorder that keeps the events it is given. */
export class RecordingRecorder implements Recorder {
  readonly events: RecordedEvent[] = [];
  event(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    this.events.push({ object: keyOf(obj), type, reason, message });
  }
  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }
}

/** A clock the test moves. */
export class FakeClock {
  private ms: number;
  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.ms = start;
  }
  readonly now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}
