// What a watch missed while it could not run: after 410 Gone the hub re-lists, and this
// turns the list into the events a client would have seen — objects changed after the
// last resourceVersion the stream delivered (ADDED when the stream never saw them, else
// MODIFIED), and objects the stream knew that are gone (DELETED) — oldest first. Pure.
import type { KubeObject } from "../../lib/kube/client.ts";

export interface MissedEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
  resourceVersion: string;
}

const DECIMAL = /^\d+$/;

/**
 * True when `rv` is newer than `since`. resourceVersions are opaque to clients, but every
 * etcd-backed apiserver issues increasing integers; anything else counts as newer (a
 * duplicate is better than a lost event).
 */
export function newerThan(rv: string | undefined, since: string): boolean {
  if (!rv || !DECIMAL.test(rv) || !DECIMAL.test(since)) return true;
  return BigInt(rv) > BigInt(since);
}

export function missedEvents(
  since: string,
  known: ReadonlySet<string>,
  items: KubeObject[],
  list: { apiVersion: string; kind: string; namespace: string; resourceVersion: string },
): MissedEvent[] {
  const out: MissedEvent[] = [];
  const present = new Set<string>();
  for (const o of items) {
    const name = o.metadata.name ?? "";
    present.add(name);
    const rv = o.metadata.resourceVersion ?? "";
    if (!newerThan(rv, since)) continue;
    out.push({
      type: known.has(name) ? "MODIFIED" : "ADDED",
      object: { ...o, apiVersion: o.apiVersion ?? list.apiVersion, kind: o.kind ?? list.kind },
      resourceVersion: rv,
    });
  }
  out.sort((a, b) => (newerThan(a.resourceVersion, b.resourceVersion) ? 1 : -1));
  for (const name of [...known].sort()) {
    if (present.has(name)) continue;
    out.push({
      type: "DELETED",
      object: { apiVersion: list.apiVersion, kind: list.kind, metadata: { name, namespace: list.namespace } },
      resourceVersion: list.resourceVersion,
    });
  }
  return out;
}
