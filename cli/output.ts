// How the CLI prints objects: kubectl-like tables from the kinds' printer columns (NAME, the
// columns, AGE), or the objects as JSON, YAML or names.
import * as yaml from "js-yaml";
import type { KindInfo } from "../clients/typescript/index.ts";

export type Format = "table" | "wide" | "json" | "yaml" | "name";
export const FORMATS: Format[] = ["table", "wide", "json", "yaml", "name"];

type Obj = { metadata?: { name?: string; namespace?: string; creationTimestamp?: string } } & Record<
  string,
  unknown
>;

/** A printer column's JSONPath, in the forms the kinds use: `.a.b` and `.a[?(@.k=="v")].c`. */
export function jsonPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  const re = /\.([A-Za-z0-9_-]+)|\[\?\(@\.([A-Za-z0-9_-]+)=="([^"]*)"\)\]/g;
  for (const m of path.matchAll(re)) {
    if (cur === undefined || cur === null) return undefined;
    if (m[1] !== undefined) cur = (cur as Record<string, unknown>)[m[1]];
    else
      cur = Array.isArray(cur)
        ? cur.find((e) => (e as Record<string, unknown>)?.[m[2]!] === m[3])
        : undefined;
  }
  return cur;
}

export function age(timestamp: string | undefined, now = Date.now()): string {
  if (!timestamp) return "<unknown>";
  const s = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === "") return "<none>";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

export function table(
  kind: KindInfo,
  items: Obj[],
  o: { wide?: boolean; namespaces?: boolean } = {},
): string {
  const columns = kind.printerColumns.filter((c) => o.wide || !c.priority);
  const head = [
    ...(o.namespaces ? ["NAMESPACE"] : []),
    "NAME",
    ...columns.map((c) => c.name.toUpperCase()),
    "AGE",
  ];
  const rows = items.map((item) => [
    ...(o.namespaces ? [item.metadata?.namespace ?? ""] : []),
    item.metadata?.name ?? "",
    ...columns.map((c) =>
      c.type === "date"
        ? age(jsonPath(item, c.jsonPath) as string | undefined)
        : cell(jsonPath(item, c.jsonPath)),
    ),
    age(item.metadata?.creationTimestamp),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("   ")
        .trimEnd(),
    )
    .join("\n");
}

/** Objects in the chosen format; a list of several is printed as a `List` in json/yaml. */
export function render(
  kind: KindInfo,
  items: Obj[],
  format: Format,
  o: { namespaces?: boolean; single?: boolean },
): string {
  switch (format) {
    case "json":
      return JSON.stringify(o.single ? items[0] : { apiVersion: "v1", kind: "List", items }, null, 2);
    case "yaml":
      return yaml
        .dump(o.single ? items[0] : { apiVersion: "v1", kind: "List", items }, { noRefs: true })
        .trimEnd();
    case "name":
      return items.map((i) => `${kind.singular}/${i.metadata?.name ?? ""}`).join("\n");
    default:
      if (items.length === 0) return "";
      return table(kind, items, { wide: format === "wide", namespaces: o.namespaces ?? false });
  }
}
