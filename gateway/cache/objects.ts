// The cached objects of one kind, kept as the JSON bytes the gateway answers with
// (serialised once per version, never per request; a Buffer of its own each, outside the
// JavaScript heap) plus what a list needs to pick and order them: the name, the uid, the
// labels and the resourceVersion. Per namespace the entries are sorted by name; namespaces
// are ordered as the apiserver orders keys across namespaces (`namespace/name`).
import type { Labels, Selector } from "./selector.ts";

export interface Entry {
  name: string;
  /** metadata.uid: tells a re-created object from the one deleted. */
  uid: string;
  /** metadata.resourceVersion as a number. */
  rv: number;
  labels: Labels;
  /** The object as the gateway sends it (UTF-8 JSON). */
  json: Buffer;
}

/** JSON bytes in a Buffer of their own (a pooled slice would keep its whole slab alive). */
export function jsonBytes(text: string): Buffer {
  const b = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  b.write(text);
  return b;
}

const OPEN = Buffer.from("[");
const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("]");

/** The JSON array of these JSON values. */
export function jsonArray(items: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN];
  items.forEach((item, i) => parts.push(...(i ? [COMMA, item] : [item])));
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

interface Bucket {
  entries: Entry[];
  /** `[json,json,...]` of every entry, built on first use after a change. */
  all: Buffer | undefined;
}

export interface Page {
  items: Buffer[];
  /** Key (relative to the list's prefix) of the last item, when matching items remain after it. */
  more: string | undefined;
  /**
   * With `more`: the objects after the page, matching or not (the apiserver's
   * remainingItemCount, which it gives for lists without a selector); else 0.
   */
  remaining: number;
}

/** Index of the first entry whose name is >= `name`. */
function lowerBound(entries: readonly Entry[], name: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.name < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ObjectStore {
  private readonly buckets = new Map<string, Bucket>();
  /** Namespaces in key order; rebuilt when one appears or empties. */
  private order: string[] | undefined;
  private count = 0;
  private jsonBytes = 0;

  /** Objects held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of serialised JSON held. */
  get bytes(): number {
    return this.jsonBytes;
  }

  get(namespace: string, name: string): Entry | undefined {
    const b = this.buckets.get(namespace);
    if (!b) return undefined;
    const e = b.entries[lowerBound(b.entries, name)];
    return e?.name === name ? e : undefined;
  }

  put(namespace: string, entry: Entry): void {
    let b = this.buckets.get(namespace);
    if (!b) {
      b = { entries: [], all: undefined };
      this.buckets.set(namespace, b);
      this.order = undefined;
    }
    const i = lowerBound(b.entries, entry.name);
    const old = b.entries[i];
    if (old?.name === entry.name) {
      this.jsonBytes += entry.json.length - old.json.length;
      b.entries[i] = entry;
    } else {
      this.count++;
      this.jsonBytes += entry.json.length;
      b.entries.splice(i, 0, entry);
    }
    b.all = undefined;
  }

  remove(namespace: string, name: string): void {
    const b = this.buckets.get(namespace);
    if (!b) return;
    const i = lowerBound(b.entries, name);
    const old = b.entries[i];
    if (old?.name !== name) return;
    b.entries.splice(i, 1);
    b.all = undefined;
    this.count--;
    this.jsonBytes -= old.json.length;
    if (b.entries.length === 0) {
      this.buckets.delete(namespace);
      this.order = undefined;
    }
  }

  /** Namespaces holding at least one object, in key order. */
  namespaces(): readonly string[] {
    this.order ??= [...this.buckets.keys()].sort((a, b) => (`${a}/` < `${b}/` ? -1 : 1));
    return this.order;
  }

  /**
   * One page of a list: the objects of `namespace` (every namespace when undefined) that
   * match, from the key `start` on, at most `limit`.
   */
  page(namespace: string | undefined, match: Selector, limit: number | undefined, start?: string): Page {
    const items: Buffer[] = [];
    let last = "";
    let more: string | undefined;
    let remaining = 0;
    const max = limit ?? Infinity;
    const scan = (ns: string, from: number, prefix: string): boolean => {
      const entries = this.buckets.get(ns)?.entries ?? [];
      for (let i = from; i < entries.length; i++) {
        const e = entries[i]!;
        if (!match(e.labels)) continue;
        if (items.length === max) {
          more = last;
          remaining = entries.length - i;
          return false;
        }
        items.push(e.json);
        last = prefix + e.name;
      }
      return true;
    };
    if (namespace !== undefined) {
      scan(
        namespace,
        start === undefined ? 0 : lowerBound(this.buckets.get(namespace)?.entries ?? [], start),
        "",
      );
      return { items, more, remaining };
    }
    const slash = start?.indexOf("/") ?? -1;
    const startNs = start === undefined || slash < 0 ? undefined : start.slice(0, slash);
    let stopped = false;
    for (const ns of this.namespaces()) {
      if (stopped) {
        remaining += this.buckets.get(ns)!.entries.length;
        continue;
      }
      let from = 0;
      if (startNs !== undefined) {
        if (`${ns}/` < `${startNs}/`) continue;
        if (ns === startNs) from = lowerBound(this.buckets.get(ns)!.entries, start!.slice(slash + 1));
      }
      stopped = !scan(ns, from, `${ns}/`);
    }
    return { items, more, remaining };
  }

  /**
   * Every object of a namespace as a JSON array, kept until the namespace changes (a
   * namespace with none gets a new empty array each time: callers key answers by it).
   */
  all(namespace: string): Buffer {
    const b = this.buckets.get(namespace);
    if (!b) return jsonArray([]);
    b.all ??= jsonArray(b.entries.map((e) => e.json));
    return b.all;
  }
}
