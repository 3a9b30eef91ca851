// Finding and killing every process a command started, from /proc: its descendants by
// parent chain, plus (where a command could have left its tree) its session. Killing
// freezes first — SIGSTOP to every member, rescanning until no new member appears — so a
// fork bomb cannot outgrow the kill, then SIGKILL to all.
import { readdirSync, readFileSync } from "node:fs";
import { setImmediate as tick, setTimeout as sleep } from "node:timers/promises";

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  /** One letter: R, S, D, Z, T, ... */
  state: string;
  /** Clock ticks since boot: tells a process from a later one that reuses its pid. */
  start: number;
}

/** Parses /proc/<pid>/stat. The command name may hold spaces and parentheses. */
export function parseStat(text: string): ProcInfo | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
  const f = text.slice(close + 2).split(" ");
  const info = {
    pid,
    state: f[0] ?? "?",
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    start: Number(f[19]),
  };
  return Number.isInteger(pid) && Number.isInteger(info.ppid) ? info : undefined;
}

export type ProcTable = Map<number, ProcInfo>;

/** Every process this runtime can see now. */
export function readProcTable(proc = "/proc"): ProcTable {
  const table: ProcTable = new Map();
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const info = parseStat(readFileSync(`${proc}/${name}/stat`, "utf8"));
      if (info) table.set(info.pid, info);
    } catch {
      // it exited while we looked
    }
  }
  return table;
}

export interface TreeSelector {
  /** The process whose descendants (and itself) belong to the tree. */
  root: number;
  /** Also every process in this session or process group (a command that left the tree). */
  session?: number;
  /** Also every child of this pid that is not in `exclude` (orphans handed to the runtime as pid 1). */
  orphansOf?: number;
  exclude?: ReadonlySet<number>;
}

/** The pids of the tree in `table`, root first; zombies left out (they cannot run or be killed). */
export function treeMembers(table: ProcTable, s: TreeSelector): number[] {
  const children = new Map<number, number[]>();
  for (const p of table.values()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const seeds = [s.root];
  for (const p of table.values()) {
    if (s.session !== undefined && (p.session === s.session || p.pgrp === s.session)) seeds.push(p.pid);
    if (s.orphansOf !== undefined && p.ppid === s.orphansOf && !s.exclude?.has(p.pid)) seeds.push(p.pid);
  }
  const found = new Set<number>();
  const queue = seeds.filter((pid) => table.has(pid));
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (found.has(pid) || (s.orphansOf !== undefined && pid === s.orphansOf)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...found].filter((pid) => table.get(pid)!.state !== "Z");
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or not ours
  }
}

/**
 * Kills the whole tree: freeze every member, rescanning until the tree stops growing and
 * every member is really stopped (a stopped process cannot fork), then SIGKILL the root
 * first and the rest after it, each only if it is still the process that was frozen (same
 * start time). Resolves when the signals are sent.
 */
export async function killTree(s: TreeSelector, readTable: () => ProcTable = readProcTable): Promise<void> {
  const frozen = new Map<number, number>();
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    const table = readTable();
    const members = treeMembers(table, s);
    const fresh = members.filter((pid) => frozen.get(pid) !== table.get(pid)!.start);
    const running = members.filter((pid) => !fresh.includes(pid) && !/^[Tt]$/.test(table.get(pid)!.state));
    if (fresh.length === 0 && running.length === 0) break;
    for (const pid of fresh) {
      frozen.set(pid, table.get(pid)!.start);
      signal(pid, "SIGSTOP");
    }
    await (running.length > 0 ? sleep(1) : tick()); // a fork in flight shows up in the next scan
  }
  const table = readTable();
  const order = [s.root, ...[...frozen.keys()].filter((pid) => pid !== s.root)];
  for (const pid of order)
    if (frozen.has(pid) && table.get(pid)?.start === frozen.get(pid)) signal(pid, "SIGKILL");
}
