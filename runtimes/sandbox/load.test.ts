import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { waitFor } from "../../test/harness/process.ts";
import {
  cgroupCpuFraction,
  clamp01,
  LoadSampler,
  memoryFraction,
  osCpuFraction,
  parseBytes,
  parseCpuMax,
  parseUsageUsec,
  type LoadSources,
} from "./load.ts";

describe("cgroup file parsing", () => {
  const cpuMax: [string | undefined, number | undefined][] = [
    ["50000 100000\n", 0.5],
    ["200000 100000", 2],
    ["max 100000\n", undefined],
    ["", undefined],
    [undefined, undefined],
    ["garbage", undefined],
    ["0 100000", undefined],
  ];
  for (const [text, cores] of cpuMax)
    it(`cpu.max ${JSON.stringify(text)} → ${cores}`, () => assert.equal(parseCpuMax(text), cores));

  it("reads usage_usec from cpu.stat", () => {
    assert.equal(parseUsageUsec("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"), 123456);
    assert.equal(parseUsageUsec("user_usec 1\n"), undefined);
    assert.equal(parseUsageUsec(undefined), undefined);
  });

  const bytes: [string | undefined, number | undefined][] = [
    ["1073741824\n", 1073741824],
    ["max\n", undefined],
    ["", undefined],
    [undefined, undefined],
  ];
  for (const [text, n] of bytes)
    it(`bytes ${JSON.stringify(text)} → ${n}`, () => assert.equal(parseBytes(text), n));
});

describe("load fractions", () => {
  const cases: [string, number, number][] = [
    ["half a core used of one", cgroupCpuFraction(0, 500_000, 1000, 1), 0.5],
    ["half a core used of a half-core limit", cgroupCpuFraction(1_000_000, 1_500_000, 1000, 0.5), 1],
    ["more than the limit is clamped", cgroupCpuFraction(0, 9_000_000, 1000, 1), 1],
    ["no time passed", cgroupCpuFraction(0, 100, 0, 1), 0],
    ["a counter reset", cgroupCpuFraction(500, 100, 1000, 1), 0],
    ["os: a quarter busy", osCpuFraction({ busy: 100, total: 1000 }, { busy: 200, total: 1400 }), 0.25],
    ["os: no ticks", osCpuFraction({ busy: 1, total: 2 }, { busy: 1, total: 2 }), 0],
    ["memory: a quarter", memoryFraction(256, 1024), 0.25],
    ["memory: over the limit", memoryFraction(2048, 1024), 1],
    ["memory: no limit", memoryFraction(1, 0), 0],
    ["clamp NaN", clamp01(Number.NaN), 0],
  ];
  for (const [name, actual, expected] of cases) it(name, () => assert.equal(actual, expected));
});

/** Fake sources: a clock and counters the test advances. */
function fakeSources(files: Record<string, string>) {
  const state = { now: 0, os: { busy: 0, total: 0 }, free: 600, total: 1000 };
  const sources: LoadSources = {
    cgroupFile: (name) => Promise.resolve(files[name]),
    cpuTimes: () => ({ ...state.os }),
    memory: () => ({ total: state.total, free: state.free }),
    nowMs: () => state.now,
  };
  return { state, files, sources };
}

describe("LoadSampler", () => {
  it("uses cgroup v2 usage against cpu.max and memory.current/memory.max when limited", async () => {
    const fake = fakeSources({
      "cpu.max": "50000 100000",
      "cpu.stat": "usage_usec 1000000\n",
      "memory.current": "268435456",
      "memory.max": "1073741824",
    });
    const sampler = new LoadSampler({ intervalMs: 1000, sources: fake.sources });
    assert.deepEqual(await sampler.sample(), { cpu: 0, memory: 0.25 });
    fake.state.now = 1000;
    fake.files["cpu.stat"] = "usage_usec 1250000\n"; // 0.25 core-seconds in 1 s of a 0.5-core limit
    fake.state.os = { busy: 1000, total: 1000 }; // the machine is busy; the cgroup is what counts
    assert.deepEqual(await sampler.sample(), { cpu: 0.5, memory: 0.25 });
  });

  it("falls back to the machine's cpu times and memory without limits", async () => {
    const fake = fakeSources({ "cpu.max": "max 100000", "cpu.stat": "usage_usec 0", "memory.max": "max" });
    const sampler = new LoadSampler({ intervalMs: 1000, sources: fake.sources });
    await sampler.sample();
    fake.state.now = 1000;
    fake.state.os = { busy: 300, total: 1000 };
    fake.state.free = 100;
    assert.deepEqual(await sampler.sample(), { cpu: 0.3, memory: 0.9 });
  });

  it("reports pinned values until the pin is cleared", async () => {
    const fake = fakeSources({});
    const sampler = new LoadSampler({ intervalMs: 1000, sources: fake.sources });
    await sampler.sample();
    sampler.override({ cpu: 0.95 });
    assert.deepEqual(sampler.current(), { cpu: 0.95, memory: 0.4 });
    sampler.override({ cpu: 0.95, memory: 2 });
    assert.deepEqual(sampler.current(), { cpu: 0.95, memory: 1 });
    sampler.override({ cpu: null });
    assert.deepEqual(sampler.current(), { cpu: 0, memory: 0.4 });
  });

  it("samples on its own once started", async () => {
    const fake = fakeSources({});
    const sampler = new LoadSampler({ intervalMs: 10, sources: fake.sources });
    await sampler.start();
    try {
      fake.state.free = 200;
      await waitFor("a new sample", () => sampler.current().memory === 0.8, {
        timeoutMs: 5000,
        intervalMs: 5,
      });
    } finally {
      sampler.stop();
    }
  });
});
