import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { importsOf, lastJsonLineOf } from "../../test/harness/freshnode.ts";
import { durationMs, formatDuration, parseDuration } from "./duration.ts";
import { defineFlags, type Flag } from "./flags.ts";

const demo = defineFlags("demo", {
  "lease-duration": { kind: "duration", env: "DEMO_LEASE", help: "lease", default: "15s" },
  "max-exec": {
    kind: "duration",
    env: "DEMO_MAX_EXEC",
    help: "longest command",
    default: "10m",
    deprecated: [{ flag: "max-exec-seconds", env: "DEMO_MAX_EXEC_SECONDS", unit: "s" }],
  },
  "idempotency-ttl": {
    kind: "duration",
    help: "ttl",
    default: "24h",
    deprecated: [{ flag: "idempotency-ttl-hours", unit: "h" }],
  },
  grace: { kind: "duration", help: "grace", default: "0s", min: "0s", max: "1h" },
  strict: { kind: "bool", env: "DEMO_STRICT", help: "strict" },
  workers: { kind: "int", env: "DEMO_WORKERS", help: "workers", default: 4, min: 1, max: 64 },
  rate: { kind: "number", help: "rate", default: 0.5, min: 0.001 },
  namespaces: { kind: "list", env: "DEMO_NAMESPACES", help: "namespaces" },
  name: { kind: "string", env: "DEMO_NAME", help: "a name" },
  mode: { kind: "string", help: "mode", choices: ["a", "b"], default: "a" },
});

/** Parse with a warning collector; "help" is a test failure. */
function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const warnings: string[] = [];
  const v = demo.parse(argv, env, (w) => warnings.push(w));
  assert.notEqual(v, "help");
  return { v: v as Exclude<typeof v, "help">, warnings };
}

describe("durations", () => {
  const cases: [string, number | undefined][] = [
    ["0", 0],
    ["0s", 0],
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["720h", 2_592_000_000],
    ["1.5h", 5_400_000],
    ["1.1s", 1100],
    [".5s", 500],
    ["1500us", 1.5],
    ["2000000ns", 2],
    ["", undefined],
    ["15", undefined],
    ["5 minutes", undefined],
    ["-1s", undefined],
    ["1d", undefined],
    ["s", undefined],
    ["1h 30m", undefined],
    ["00", undefined],
  ];
  for (const [text, ms] of cases)
    it(`reads ${JSON.stringify(text)} as ${ms ?? "no duration"}`, () => assert.equal(durationMs(text), ms));

  it("names the flag when a value is not a duration", () => {
    assert.throws(() => parseDuration("stall-after", "soon"), /--stall-after must be a duration.*"soon"/);
  });

  it("formats whole milliseconds so that they read back the same (property)", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1e12 }), (ms) => {
        const text = formatDuration(ms);
        assert.match(text, /^(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$|^0s$/);
        assert.equal(durationMs(text), ms);
      }),
    );
  });

  it("adds the parts of a concatenation (property)", () => {
    const part = fc
      .tuple(fc.nat({ max: 100_000 }), fc.constantFrom("ms", "s", "m", "h"))
      .map(([n, u]) => `${n}${u}`);
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (parts) => {
        const sum = parts.reduce((t, p) => t + durationMs(p)!, 0);
        assert.equal(durationMs(parts.join("")), sum);
      }),
    );
  });

  it("accepts no text outside the grammar (property)", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const ms = durationMs(text);
        if (ms === undefined) return;
        assert.match(text, /^(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+)$/);
        assert.ok(ms >= 0 && Number.isFinite(ms));
      }),
    );
  });

  it("refuses what cannot be a duration when formatting", () => {
    assert.throws(() => formatDuration(-1), RangeError);
    assert.throws(() => formatDuration(Number.NaN), RangeError);
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(90_000), "1m30s");
    assert.equal(formatDuration(2_592_000_000), "720h");
  });
});

describe("defineFlags", () => {
  it("gives the defaults, durations in milliseconds", () => {
    assert.deepEqual(parse([]).v, {
      "lease-duration": 15_000,
      "max-exec": 600_000,
      "idempotency-ttl": 86_400_000,
      grace: 0,
      strict: false,
      workers: 4,
      rate: 0.5,
      namespaces: [],
      name: undefined,
      mode: "a",
    });
    assert.deepEqual(parse([]).warnings, []);
  });

  it("takes --flag=value and --flag value, booleans with or without a value", () => {
    const { v } = parse(["--lease-duration", "2m", "--workers=8", "--strict", "--namespaces= a, b ,,c"]);
    assert.equal(v["lease-duration"], 120_000);
    assert.equal(v.workers, 8);
    assert.equal(v.strict, true);
    assert.deepEqual(v.namespaces, ["a", "b", "c"]);
    assert.equal(parse(["--strict=false"]).v.strict, false);
    assert.equal(parse(["--strict=1"]).v.strict, true);
    assert.equal(parse(["--strict", "false"]).v.strict, false);
    // A bool flag takes no following flag as its value.
    const both = parse(["--strict", "--workers", "3"]).v;
    assert.equal(both.strict, true);
    assert.equal(both.workers, 3);
    // A value flag takes the next word whatever it is, as its own value.
    assert.deepEqual(parse(["--namespaces", "--strict"]).v.namespaces, ["--strict"]);
  });

  it("prefers the flag to the environment and the environment to the default (property)", () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 1, max: 64 })),
        fc.option(fc.integer({ min: 1, max: 64 })),
        (flag, env) => {
          const argv = flag === null ? [] : [`--workers=${flag}`];
          const { v } = parse(argv, env === null ? {} : { DEMO_WORKERS: String(env) });
          assert.equal(v.workers, flag ?? env ?? 4);
        },
      ),
    );
  });

  it("treats an empty environment variable as unset, and keeps a value as written", () => {
    assert.equal(parse([], { DEMO_WORKERS: "" }).v.workers, 4);
    assert.equal(parse([], { DEMO_NAME: "" }).v.name, undefined);
    assert.equal(parse([], { DEMO_NAME: " x\n" }).v.name, " x\n");
    assert.equal(parse([], { DEMO_NAME: "x" }).v.name, "x");
  });

  it("reads a bare number given to a duration as seconds, with a warning naming the new form", () => {
    const flag = parse(["--lease-duration=15"]);
    assert.equal(flag.v["lease-duration"], 15_000);
    assert.deepEqual(flag.warnings, [
      "--lease-duration=15 has no unit and is read as seconds (deprecated): write 15s",
    ]);
    const env = parse([], { DEMO_LEASE: "0.5" });
    assert.equal(env.v["lease-duration"], 500);
    assert.match(env.warnings[0]!, /^DEMO_LEASE=0.5 has no unit .* write 500ms$/);
    assert.deepEqual(parse(["--grace=0"]).warnings, [], "0 needs no unit, as in Go");
  });

  it("keeps old flag and variable names working in their old unit, with a warning", () => {
    const hours = parse(["--idempotency-ttl-hours=48"]);
    assert.equal(hours.v["idempotency-ttl"], 48 * 3_600_000);
    assert.deepEqual(hours.warnings, [
      "--idempotency-ttl-hours is deprecated; use --idempotency-ttl=48h (48 hours)",
    ]);
    const env = parse([], { DEMO_MAX_EXEC_SECONDS: "90" });
    assert.equal(env.v["max-exec"], 90_000);
    assert.deepEqual(env.warnings, [
      "DEMO_MAX_EXEC_SECONDS is deprecated; use DEMO_MAX_EXEC=1m30s (90 seconds)",
    ]);
    // An old name may already carry a unit.
    assert.equal(parse(["--max-exec-seconds=2m"]).v["max-exec"], 120_000);
  });

  it("reads any bare number on an old name in its old unit, with exactly one warning (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.boolean(), (n, viaEnv) => {
        const { v, warnings } = viaEnv
          ? parse([], { DEMO_MAX_EXEC_SECONDS: String(n) })
          : parse([`--idempotency-ttl-hours=${n}`]);
        if (viaEnv) assert.equal(v["max-exec"], n * 1000);
        else assert.equal(v["idempotency-ttl"], n * 3_600_000);
        assert.equal(warnings.length, 1);
      }),
    );
  });

  it("lets the new name win over the old one, and any flag over any variable", () => {
    assert.equal(parse(["--max-exec=1s", "--max-exec-seconds=5"]).v["max-exec"], 1000);
    assert.equal(parse(["--max-exec-seconds=5"], { DEMO_MAX_EXEC: "1s" }).v["max-exec"], 5000);
    assert.equal(parse([], { DEMO_MAX_EXEC: "1s", DEMO_MAX_EXEC_SECONDS: "5" }).v["max-exec"], 1000);
  });

  const bad: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [["--bogus=1"], {}, /unknown option '--bogus=1'|unknown option '--bogus'/],
    [["extra"], {}, /too many arguments/],
    [["--lease-duration=soon"], {}, /--lease-duration \(DEMO_LEASE\) must be a duration .*, got "soon"$/],
    [["--lease-duration=0s"], {}, /must be longer than 0/],
    [["--grace=2h"], {}, /--grace must be at most 1h, got "2h"/],
    [["--workers=0"], {}, /--workers \(DEMO_WORKERS\) must be an integer from 1 to 64, got "0"/],
    [[], { DEMO_WORKERS: "1.5" }, /--workers \(DEMO_WORKERS\) must be an integer/],
    [["--rate=x"], {}, /--rate must be a number >= 0.001, got "x"/],
    [["--strict=yes"], {}, /--strict \(DEMO_STRICT\) must be true or false, got "yes"/],
    [["--mode=c"], {}, /--mode must be one of a, b, got "c"/],
    [["--workers"], {}, /option '--workers <n>' argument missing$/],
    [["-x"], {}, /unknown option '-x'/],
    [["--strict", "yes"], {}, /--strict \(DEMO_STRICT\) must be true or false, got "yes"/],
    [["--", "extra"], {}, /too many arguments/],
  ];
  for (const [argv, env, re] of bad)
    it(`refuses ${JSON.stringify(argv)} ${JSON.stringify(env)}`, () =>
      assert.throws(() => demo.parse(argv, env, () => {}), re));

  it("answers help for --help and -h", () => {
    assert.equal(demo.parse(["--help"], {}), "help");
    assert.equal(demo.parse(["--workers=2", "-h"], {}), "help");
  });

  it("lists every flag with its variable and default in --help, and the old names apart", () => {
    const text = demo.usage();
    assert.match(text, /^Usage: agentry demo \[options\]/);
    for (const [name, f] of Object.entries(demo.flags) as [string, Flag][]) {
      const line = text.split("\n").find((l) => l.startsWith(`  --${name} `));
      assert.ok(line, `--${name} is listed`);
      if (f.env) assert.ok(text.includes(`env: ${f.env}`), `${f.env} is named`);
    }
    assert.match(text, /--lease-duration <duration> +lease \(default: "15s", env: DEMO_LEASE\)/);
    assert.doesNotMatch(text, /^ {2}--max-exec-seconds /m);
    assert.match(
      text,
      /--max-exec-seconds, DEMO_MAX_EXEC_SECONDS → --max-exec \(a bare number is read as seconds\)/,
    );
    assert.match(text, /Durations are Go-style/);
  });

  it("refuses a flag table whose default is not a value of its kind", () => {
    assert.throws(
      () => defineFlags("x", { d: { kind: "duration", help: "d", default: "15" } }),
      /default of --d: must be a duration/,
    );
    assert.throws(() => defineFlags("x", { help: { kind: "bool", help: "h" } }), /--help/);
  });

  it("does not read the process environment when given one", () => {
    process.env.DEMO_WORKERS = "9";
    try {
      assert.equal(parse([], {}).v.workers, 4);
    } finally {
      delete process.env.DEMO_WORKERS;
    }
  });
});

describe("the programs' flags", () => {
  /** Module URLs resolved while a fresh Node imports `modules`. */
  function resolvedWhileImporting(modules: string[]): string[] {
    const hook = `const seen = []; (await import("node:module")).registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } });`;
    return lastJsonLineOf<string[]>(`${hook} ${importsOf(modules)} console.log(JSON.stringify(seen));`);
  }
  const commander = (urls: string[]) => urls.filter((u) => u.includes("/node_modules/commander/"));

  it("load no commander in any program (about 2 MiB resident in each)", () => {
    assert.ok(commander(resolvedWhileImporting(["commander"])).length > 0, "the check sees commander");
    const programs = [
      "./operator/config.ts",
      "./gateway/config.ts",
      "./webhook/config.ts",
      "./runtimes/agent/config.ts",
      "./runtimes/agent/dispatch.ts",
      "./runtimes/sandbox/config.ts",
    ];
    assert.deepEqual(commander(resolvedWhileImporting(programs)), []);
  });
});
