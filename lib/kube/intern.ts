// One copy of each repeated string in the operator's caches. JSON.parse makes a new string for
// every value it reads (only short ones and property names are shared), so 10,000 cached
// objects carry 10,000 copies of their namespace, of the same label values, spec hashes,
// owner kinds, condition reasons, node names and timestamps of the same second. Interning the
// fields that repeat across objects keeps one copy each. Names, uids and resourceVersions are
// unique per object and are left alone.
import type { ObjectMeta } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "./client.ts";

/** Longest string worth interning (longer ones are rarely shared: messages, JSON). */
const MAX_LENGTH = 256;
/** The pool is emptied when it grows past this (sharing is lost for a while, nothing else). */
const MAX_ENTRIES = 100_000;

export class StringPool {
  private readonly strings = new Map<string, string>();
  private readonly maxEntries: number;

  constructor(maxEntries = MAX_ENTRIES) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.strings.size;
  }

  /** The pool's copy of `s` (strings only; anything else is returned as it is). */
  intern<T>(s: T): T {
    if (typeof s !== "string" || s.length > MAX_LENGTH) return s;
    const known = this.strings.get(s);
    if (known !== undefined) return known as T;
    if (this.strings.size >= this.maxEntries) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }

  /** Interns the values of a string map in place. */
  private values(map: Record<string, unknown> | undefined): void {
    if (!map) return;
    for (const k of Object.keys(map)) map[k] = this.intern(map[k]);
  }

  /** Interns these fields of `o` in place, where present (no key is added). */
  private fields(o: object, keys: readonly string[]): void {
    const rec = o as Record<string, unknown>;
    for (const k of keys) if (typeof rec[k] === "string") rec[k] = this.intern(rec[k]);
  }

  /**
   * Interns, in place, the fields of a freshly parsed object that repeat across objects:
   * apiVersion, kind, namespace, creation and deletion times, label and annotation values,
   * owners' kinds, and the status conditions, phase and node name.
   */
  object(o: KubeObject): void {
    this.fields(o, ["apiVersion", "kind"]);
    const m = o.metadata as ObjectMeta | undefined;
    if (m && typeof m === "object") {
      this.fields(m, ["namespace", "creationTimestamp", "deletionTimestamp"]);
      if (isRecord(m.labels)) this.values(m.labels);
      if (isRecord(m.annotations)) this.values(m.annotations);
      if (Array.isArray(m.ownerReferences))
        for (const r of m.ownerReferences as unknown[])
          if (isRecord(r)) this.fields(r, ["apiVersion", "kind"]);
    }
    if (isRecord(o["spec"])) this.fields(o["spec"], ["nodeName"]);
    const status = o["status"];
    if (!isRecord(status)) return;
    this.fields(status, ["phase"]);
    if (Array.isArray(status["conditions"]))
      for (const c of status["conditions"] as unknown[]) if (isRecord(c)) this.values(c);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
