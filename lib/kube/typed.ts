// The operator's view of its own kinds: an informer of raw objects, each parsed by its
// kind's zod schema once per resourceVersion (defaults applied) and handed out typed and
// frozen, so no controller can change what another reads. An object whose spec does not
// parse (stored before a schema change, or written past the webhook) is not handed out as
// if it were valid: get() answers undefined, invalid() says why, and `onInvalid` reports it
// once per version (a Warning event and a log line in the operator).
import { isDeepStrictEqual } from "node:util";
import { specSchemas, type AgentryObject } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "./client.ts";
import { keyOf, type Handler, type SharedInformer } from "./informer.ts";

type Kind = AgentryObject["kind"];
type Of<K extends Kind> = Extract<AgentryObject, { kind: K }>;

/** Deeply frozen: what a cache hands out is read-only at run time as in its type. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

/** A kind's object with its spec parsed (defaults applied), or why it does not parse. */
export function parseObject<K extends Kind>(kind: K, raw: KubeObject): Parsed<Of<K>> {
  const spec = specSchemas[kind].safeParse(raw["spec"]);
  if (!spec.success)
    return {
      ok: false,
      problem: spec.error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`).join("; "),
    };
  // The parsed view shares the cached object's metadata and status (frozen in place: the cache
  // never changes an object it holds, a new version is a new object), so it costs its spec.
  return { ok: true, value: deepFreeze({ ...raw, spec: spec.data }) as unknown as Of<K> };
}

export class TypedInformer<K extends Kind> implements SharedInformer<Of<K>> {
  readonly kind: K;
  private readonly raw: SharedInformer<KubeObject>;
  private readonly onInvalid: (obj: KubeObject, problem: string) => void;
  /** Parsed views by raw object (a new version is a new raw object). */
  private readonly views = new WeakMap<KubeObject, Parsed<Of<K>>>();
  /**
   * The cached objects that do not parse, by key, kept from the cache's events (listInvalid
   * reads these, not the whole cache), each with the last version of it that did parse, if
   * any: the one a delete is handed out as, so handlers hear of its going.
   */
  private readonly invalids = new Map<string, { raw: KubeObject; lastValid?: Of<K> }>();

  constructor(
    kind: K,
    raw: SharedInformer<KubeObject>,
    onInvalid: (obj: KubeObject, problem: string) => void,
  ) {
    this.kind = kind;
    this.raw = raw;
    this.onInvalid = onInvalid;
    for (const o of raw.list()) this.track(o);
    raw.on("add", (o) => this.track(o));
    raw.on("update", (o, old) => {
      if (old) this.carry(o, old);
      this.track(o, old);
    });
    // After every handler of this delete (they may read its last valid version).
    raw.on("delete", (o) => {
      const key = keyOf(o);
      const gone = this.invalids.get(key);
      if (gone) queueMicrotask(() => this.invalids.get(key) === gone && this.invalids.delete(key));
    });
  }

  private track(raw: KubeObject, old?: KubeObject): void {
    const key = keyOf(raw);
    if (this.view(raw).ok) {
      this.invalids.delete(key);
      return;
    }
    const prior = this.invalids.get(key);
    const lastValid =
      (old && old.metadata.uid === raw.metadata.uid ? this.valid(old) : undefined) ??
      (prior && prior.raw.metadata.uid === raw.metadata.uid ? prior.lastValid : undefined);
    this.invalids.set(key, lastValid ? { raw, lastValid } : { raw });
  }

  private view(raw: KubeObject): Parsed<Of<K>> {
    let v = this.views.get(raw);
    if (!v) {
      v = parseObject(this.kind, raw);
      this.views.set(raw, v);
      if (!v.ok) this.onInvalid(raw, v.problem);
    }
    return v;
  }

  /**
   * A new version of the same object whose spec is unchanged (a status write, a label) takes
   * the parsed spec of the version before it: comparing the raw specs costs less than parsing.
   */
  private carry(raw: KubeObject, old: KubeObject): void {
    if (this.views.has(raw) || raw.metadata.uid !== old.metadata.uid) return;
    const before = this.views.get(old);
    if (!before?.ok || !isDeepStrictEqual(raw["spec"], old["spec"])) return;
    const value = deepFreeze({ ...raw, spec: before.value.spec }) as unknown as Of<K>;
    this.views.set(raw, { ok: true, value });
  }

  private valid(raw: KubeObject | undefined): Of<K> | undefined {
    if (!raw) return undefined;
    const v = this.view(raw);
    return v.ok ? v.value : undefined;
  }

  /**
   * Handlers see valid objects only; an update from a valid version to an invalid one, or
   * back, reaches them as an update with what is valid of the two (the reconciler then reads
   * get() and invalid()), and the delete of an object that no longer parses as the delete of
   * its last version that did.
   */
  on(event: "add" | "update" | "delete", handler: Handler<Of<K>>): void {
    this.raw.on(event, (obj, old) => {
      const now = this.valid(obj);
      const before = old ? this.valid(old) : undefined;
      const either =
        now ?? before ?? (event === "delete" ? this.invalids.get(keyOf(obj))?.lastValid : undefined);
      if (either) handler(either, before);
    });
  }

  get(namespace: string | undefined, name: string): Of<K> | undefined {
    return this.valid(this.raw.get(namespace, name));
  }

  /** Why the object of this name does not parse; undefined when it does or is absent. */
  invalid(namespace: string | undefined, name: string): string | undefined {
    const raw = this.raw.get(namespace, name);
    if (!raw) return undefined;
    const v = this.view(raw);
    return v.ok ? undefined : v.problem;
  }

  /** Whether an object of this name is in the cache at all, valid or not. */
  exists(namespace: string | undefined, name: string): boolean {
    return this.raw.get(namespace, name) !== undefined;
  }

  list(namespace?: string): readonly Of<K>[] {
    const out: Of<K>[] = [];
    for (const raw of this.raw.list(namespace)) {
      const v = this.valid(raw);
      if (v) out.push(v);
    }
    return out;
  }

  /** The objects that do not parse, as the cache holds them: not to be changed. */
  listInvalid(namespace?: string): readonly KubeObject[] {
    const out: KubeObject[] = [];
    for (const { raw } of this.invalids.values())
      if (
        (namespace === undefined || raw.metadata.namespace === namespace) &&
        this.raw.get(raw.metadata.namespace, raw.metadata.name!) === raw
      )
        out.push(raw);
    return out;
  }

  start(): Promise<void> {
    return this.raw.start();
  }
  stop(): Promise<void> {
    return this.raw.stop();
  }
  waitForSync(): Promise<void> {
    return this.raw.waitForSync();
  }
  get hasSynced(): boolean {
    return this.raw.hasSynced;
  }
}
