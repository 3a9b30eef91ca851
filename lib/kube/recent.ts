// A map that keeps only the `limit` entries used most recently: for memos that pay off while
// an object is in motion (a burst of passes over it) and need not be held for every object
// of a large cache once it has settled.
export class RecentMap<K, V> {
  private readonly limit: number;
  private readonly entries = new Map<K, V>();

  constructor(limit: number) {
    if (!(limit >= 1)) throw new Error(`RecentMap: limit ${limit} is not at least 1`);
    this.limit = limit;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, v);
    return v;
  }

  /** Forgets `key`. */
  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Sets `key` as the most recently used; the least recently used goes beyond the limit. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value as K);
  }
}
