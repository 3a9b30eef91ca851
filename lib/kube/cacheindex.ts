// An index over an informer's cache, kept up to date by its events: the objects by a value
// each of them names (their owner, a referenced object), so a controller finds an owner's
// children or a Workspace's users in O(their number) instead of scanning the namespace.
import type { KubeObject } from "./client.ts";
import { keyOf, splitKey, type SharedInformer } from "./informer.ts";

export class CacheIndex<T extends KubeObject> {
  private readonly informer: SharedInformer<T>;
  private readonly valuesOf: (obj: T) => readonly string[];
  /** Object keys by value, and the values each key was last indexed under. */
  private readonly keys = new Map<string, Set<string>>();
  private readonly indexed = new Map<string, readonly string[]>();

  constructor(informer: SharedInformer<T>, valuesOf: (obj: T) => readonly string[]) {
    this.informer = informer;
    this.valuesOf = valuesOf;
    for (const obj of informer.list()) this.put(obj);
    informer.on("add", (obj) => this.put(obj));
    informer.on("update", (obj) => this.put(obj));
    informer.on("delete", (obj) => this.drop(keyOf(obj)));
  }

  /** The cached objects indexed under `value` (as the cache holds them now). */
  get(value: string): T[] {
    const out: T[] = [];
    for (const key of this.keys.get(value) ?? []) {
      const { namespace, name } = splitKey(key);
      const obj = this.informer.get(namespace || undefined, name);
      if (obj) out.push(obj);
    }
    return out;
  }

  private put(obj: T): void {
    const key = keyOf(obj);
    const values = this.valuesOf(obj);
    const before = this.indexed.get(key);
    if (before && before.length === values.length && before.every((v, i) => v === values[i])) return;
    this.drop(key);
    if (values.length === 0) return;
    this.indexed.set(key, values);
    for (const v of values) {
      let set = this.keys.get(v);
      if (!set) this.keys.set(v, (set = new Set()));
      set.add(key);
    }
  }

  private drop(key: string): void {
    for (const v of this.indexed.get(key) ?? []) {
      const set = this.keys.get(v);
      set?.delete(key);
      if (set?.size === 0) this.keys.delete(v);
    }
    this.indexed.delete(key);
  }
}

/** The index value `<namespace>/<name>` of an object named in the same namespace (none when unnamed). */
export const inNamespace = (obj: KubeObject, name: string | undefined): readonly string[] =>
  name && obj.metadata.namespace ? [`${obj.metadata.namespace}/${name}`] : [];
