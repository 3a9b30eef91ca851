// Where an operator's memory goes: a V8 heap snapshot taken on a signal (the operator runs
// with --heapsnapshot-signal), summarised like the Summary view of Chrome's DevTools: the
// shallow size of the heap's objects grouped by constructor (or by kind for strings, code,
// arrays), the largest groups first.
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../test/harness/process.ts";
import type { BenchOperator } from "./lib.ts";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

/** Shallow bytes by constructor of a parsed heap snapshot, largest first. */
export function summarise(snap: Snapshot): { total: number; groups: HeapGroup[] } {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const groups = new Map<string, HeapGroup>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!] ?? "?";
    const bytes = snap.nodes[i + sizeAt]!;
    total += bytes;
    // Objects by constructor; everything else (strings, code, arrays, hidden) by its type.
    const name =
      type === "object" || type === "closure" ? `${snap.strings[snap.nodes[i + nameAt]!]}` : `(${type})`;
    const g = groups.get(name) ?? { name, count: 0, bytes: 0 };
    g.count++;
    g.bytes += bytes;
    groups.set(name, g);
  }
  return { total, groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes) };
}

const mib = (b: number) => (b / 1024 / 1024).toFixed(1);

/**
 * Takes a heap snapshot of the operator (SIGUSR2) and returns note lines: the heap's total
 * and its largest groups. The operator must run with heap snapshots enabled.
 */
export async function heapSummary(operator: BenchOperator, what: string, top = 12): Promise<string[]> {
  const dir = operator.heapDir;
  if (!dir) return [];
  const before = new Set(await readdir(dir));
  operator.child.kill("SIGUSR2");
  // Written when its size stops changing and it parses.
  let file = "";
  let size = -1;
  await waitFor(
    "heap snapshot written",
    async () => {
      const fresh = (await readdir(dir)).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
      if (!fresh) return false;
      file = join(dir, fresh);
      const s = (await stat(file)).size;
      const settled = s > 0 && s === size;
      size = s;
      return settled;
    },
    { timeoutMs: 300_000, intervalMs: 1000 },
  );
  const { total, groups } = summarise(JSON.parse(await readFile(file, "utf8")) as Snapshot);
  await rm(file, { force: true });
  return [
    `Heap snapshot of the ${what} (shallow sizes by constructor): ${mib(total)} MiB in the V8 heap; largest: ` +
      groups
        .slice(0, top)
        .map((g) => `${g.name} ${mib(g.bytes)} MiB (${g.count})`)
        .join(", ") +
      ".",
  ];
}
