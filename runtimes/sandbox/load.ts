// CPU and memory load of this sandbox as fractions of its limits, sampled periodically.
// cgroup v2 first (the container's own limits): cpu = cpu.stat usage over the interval
// against cpu.max, memory = memory.current / memory.max. Without a limit it falls back to
// the machine: busy share of all CPUs over the interval, (total - free) / total memory.
import { readFile } from "node:fs/promises";
import { cpus, freemem, totalmem } from "node:os";
import { join } from "node:path";
import type { LoadOverride } from "../../contracts/sandbox.ts";

export interface Load {
  cpu: number;
  memory: number;
}

export interface CpuTimes {
  busy: number;
  total: number;
}

/** Where the numbers come from; injectable for tests. */
export interface LoadSources {
  /** Reads a cgroup file, undefined when it does not exist. */
  cgroupFile(name: string): Promise<string | undefined>;
  cpuTimes(): CpuTimes;
  memory(): { total: number; free: number };
  nowMs(): number;
}

export function clamp01(n: number): number {
  if (!Number.isFinite(n) || n < 0) return 0;
  return n > 1 ? 1 : n;
}

/** cpu.max "<quota> <period>" → the limit in cores; undefined for "max" (unlimited) or junk. */
export function parseCpuMax(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? "").trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period ?? "100000");
  if (quota === "max" || !Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}

/** The usage_usec line of cpu.stat. */
export function parseUsageUsec(text: string | undefined): number | undefined {
  const match = /^usage_usec\s+(\d+)$/m.exec(text ?? "");
  return match ? Number(match[1]) : undefined;
}

/** A byte count from memory.current / memory.max; undefined for "max" or junk. */
export function parseBytes(text: string | undefined): number | undefined {
  const value = (text ?? "").trim();
  if (!/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** CPU used over an interval against a limit of `cores`. */
export function cgroupCpuFraction(
  prevUsec: number,
  curUsec: number,
  elapsedMs: number,
  cores: number,
): number {
  if (elapsedMs <= 0 || cores <= 0) return 0;
  return clamp01((curUsec - prevUsec) / (elapsedMs * 1000 * cores));
}

/** Busy share of all CPUs between two readings of the machine's CPU times. */
export function osCpuFraction(prev: CpuTimes, cur: CpuTimes): number {
  const total = cur.total - prev.total;
  return total > 0 ? clamp01((cur.busy - prev.busy) / total) : 0;
}

export function memoryFraction(used: number, limit: number): number {
  return limit > 0 ? clamp01(used / limit) : 0;
}

export function systemSources(cgroupDir = "/sys/fs/cgroup"): LoadSources {
  return {
    cgroupFile: (name) => readFile(join(cgroupDir, name), "utf8").catch(() => undefined),
    cpuTimes: () => {
      let busy = 0;
      let total = 0;
      for (const { times } of cpus()) {
        const b = times.user + times.nice + times.sys + times.irq;
        busy += b;
        total += b + times.idle;
      }
      return { busy, total };
    },
    memory: () => ({ total: totalmem(), free: freemem() }),
    nowMs: () => performance.now(),
  };
}

interface Reading {
  atMs: number;
  cgroupUsec: number | undefined;
  cores: number | undefined;
  os: CpuTimes;
}

export class LoadSampler {
  private readonly sources: LoadSources;
  private readonly intervalMs: number;
  private previous: Reading | undefined;
  private measured: Load = { cpu: 0, memory: 0 };
  private pinned: { cpu?: number; memory?: number } = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(options: { intervalMs: number; sources?: LoadSources }) {
    this.intervalMs = options.intervalMs;
    this.sources = options.sources ?? systemSources();
  }

  /** Takes a first reading and then one every interval. */
  async start(): Promise<void> {
    await this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The load to report: pinned values win over measured ones. */
  current(): Load {
    return { cpu: this.pinned.cpu ?? this.measured.cpu, memory: this.pinned.memory ?? this.measured.memory };
  }

  /** Test seam: pins cpu and/or memory; a null or absent value clears that pin. */
  override(load: LoadOverride): void {
    this.pinned = {
      ...(typeof load.cpu === "number" ? { cpu: clamp01(load.cpu) } : {}),
      ...(typeof load.memory === "number" ? { memory: clamp01(load.memory) } : {}),
    };
  }

  /** One reading; computes cpu against the previous reading. */
  async sample(): Promise<Load> {
    const [cpuMax, cpuStat, memCurrent, memMax] = await Promise.all(
      ["cpu.max", "cpu.stat", "memory.current", "memory.max"].map((f) => this.sources.cgroupFile(f)),
    );
    const reading: Reading = {
      atMs: this.sources.nowMs(),
      cgroupUsec: parseUsageUsec(cpuStat),
      cores: parseCpuMax(cpuMax),
      os: this.sources.cpuTimes(),
    };
    const prev = this.previous;
    let cpu = this.measured.cpu;
    if (prev) {
      cpu =
        reading.cores !== undefined && reading.cgroupUsec !== undefined && prev.cgroupUsec !== undefined
          ? cgroupCpuFraction(prev.cgroupUsec, reading.cgroupUsec, reading.atMs - prev.atMs, reading.cores)
          : osCpuFraction(prev.os, reading.os);
    }
    this.previous = reading;
    const used = parseBytes(memCurrent);
    const limit = parseBytes(memMax);
    let memory: number;
    if (used !== undefined && limit !== undefined) memory = memoryFraction(used, limit);
    else {
      const { total, free } = this.sources.memory();
      memory = memoryFraction(total - free, total);
    }
    this.measured = { cpu, memory };
    return this.measured;
  }
}
