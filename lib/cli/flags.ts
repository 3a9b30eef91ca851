// The flags of every agentry program, declared once as a table: each flag has a kind
// (string, bool, int, number, duration, list), a help line, an optional AGENTRY_* (or other)
// environment variable and a default. A value comes from the command line, else the
// environment, else the default. Durations are Go-style everywhere ("15s", "2m", "720h").
// Flags whose name or unit changed keep their old form working, with a warning on stderr:
// a bare number given to a duration flag is read in its old unit (seconds unless the flag
// says otherwise), and an old flag or variable name (`--max-exec-seconds=600`) is read in
// its own unit. node's util.parseArgs splits the command line; `--help` is printed from the
// same table. (The programs' flags do not load commander: in every operator, gateway and
// agent or sandbox process it would hold about 2 MiB for the few milliseconds of a start.)
import { parseArgs } from "node:util";
import { durationMs, formatDuration, unitMs, type DurationUnit } from "./duration.ts";

/** A flag's old name (and/or environment variable) whose bare numbers were in `unit`. */
export interface Deprecated {
  flag?: string;
  env?: string;
  /** Durations only: the unit the old form's bare number is read in (days too: "d"). */
  unit?: OldUnit;
}
type OldUnit = DurationUnit | "d";
const oldUnitMs = (unit: OldUnit) => (unit === "d" ? 86_400_000 : unitMs(unit));

interface Common {
  help: string;
  env?: string;
  deprecated?: readonly Deprecated[];
}
export type Flag = Common &
  (
    | { kind: "string"; default?: string; choices?: readonly string[] }
    | { kind: "bool"; default?: boolean }
    | { kind: "int" | "number"; default?: number; min?: number; max?: number }
    | {
        kind: "duration";
        /** Go-style. */
        default?: string;
        /** Least value, Go-style; "0s" allows zero. Default: more than zero. */
        min?: string;
        max?: string;
        /** Unit of a bare number (the flag's old form); default seconds. */
        bareUnit?: DurationUnit;
      }
    | { kind: "list"; default?: string }
    /** "host:port", "[::1]:port" or ":port" (any address); port 0: any free port. */
    | { kind: "addr"; default?: string }
  );

type Kind<F> = F extends { kind: infer K } ? K : never;
type ValueOf<F> =
  Kind<F> extends "bool"
    ? boolean
    : Kind<F> extends "int" | "number" | "duration"
      ? number
      : Kind<F> extends "list"
        ? string[]
        : Kind<F> extends "addr"
          ? Addr
          : string;
/** The parsed values: durations in milliseconds; flags with no default may be undefined. */
export type FlagValues<S extends Record<string, Flag>> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown }
    ? ValueOf<S[K]>
    : Kind<S[K]> extends "bool" | "list"
      ? ValueOf<S[K]>
      : ValueOf<S[K]> | undefined;
};

export interface Addr {
  host: string;
  port: number;
}

export type Warn = (message: string) => void;

export interface FlagSet<S extends Record<string, Flag>> {
  readonly flags: S;
  /** The values, or "help" when --help was asked for; throws an Error saying what is wrong. */
  parse: (argv: readonly string[], env?: NodeJS.ProcessEnv, warn?: Warn) => FlagValues<S> | "help";
  /** The --help text. */
  usage: () => string;
  /** "--name (ENV)": how errors name a flag. */
  describe: (name: keyof S & string) => string;
}

export interface FlagSetOptions {
  /** Text between the usage line and the options (e.g. subcommands). */
  description?: string;
  /** The usage line after the program name; default "[options]". */
  usage?: string;
}

const BARE_NUMBER = /^\d+(\.\d+)?$/;

/** A warning on stderr, prefixed with the program's name. */
export const stderrWarning =
  (program: string): Warn =>
  (message) =>
    process.stderr.write(`agentry ${program}: warning: ${message}\n`);

export function defineFlags<const S extends Record<string, Flag>>(
  program: string,
  flags: S,
  options: FlagSetOptions = {},
): FlagSet<S> {
  const entries = Object.entries(flags) as [keyof S & string, Flag][];
  for (const [name, f] of entries) {
    if (name === "help") throw new Error("--help is every program's own");
    const problem = f.default === undefined ? undefined : check(name, f, String(f.default));
    if (problem) throw new Error(`flag table of ${program}: default of --${name}: ${problem}`);
  }
  const describe = (name: keyof S & string) => {
    const env = flags[name]!.env;
    return env ? `--${name} (${env})` : `--${name}`;
  };

  // What the command line may name: the flags (bool ones take no word of their own, so
  // "--strict --workers=2" is read right), their old names, and -h/--help.
  const argOptions: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, f] of entries) {
    argOptions[name] = { type: f.kind === "bool" ? "boolean" : "string" };
    for (const d of f.deprecated ?? []) if (d.flag) argOptions[d.flag] = { type: "string" };
  }

  /** The values the command line gives, by flag name as written (old names too); or "help". */
  const readArgv = (argv: readonly string[]): Map<string, string> | "help" => {
    const { tokens } = parseArgs({
      args: [...argv],
      options: argOptions,
      strict: false,
      allowPositionals: true,
      tokens: true,
    });
    if (tokens.some((t) => t.kind === "option" && t.name === "help")) return "help";
    const given = new Map<string, string>();
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t.kind === "option-terminator") continue;
      if (t.kind === "positional")
        throw new Error(`too many arguments: agentry ${program} takes flags only, got "${t.value}"`);
      if (!Object.hasOwn(argOptions, t.name)) throw new Error(`unknown option '${t.rawName}'`);
      let value = t.value;
      if (value === undefined && argOptions[t.name]!.type === "boolean") {
        // A bool flag alone is true; its value may also follow as a word ("--strict false").
        const next = tokens[i + 1];
        if (next?.kind === "positional") {
          value = next.value;
          i++;
        } else value = "true";
      }
      if (value === undefined) {
        // An old name takes any word (its value is read in the old form).
        const f: Flag | undefined = Object.hasOwn(flags, t.name) ? flags[t.name] : undefined;
        throw new Error(`option '${t.rawName} ${f ? argument(f) : "<value>"}' argument missing`);
      }
      given.set(t.name, value);
    }
    return given;
  };

  const parse = (
    argv: readonly string[],
    env: NodeJS.ProcessEnv = process.env,
    warn: Warn = stderrWarning(program),
  ): FlagValues<S> | "help" => {
    const given = readArgv(argv);
    if (given === "help") return "help";
    const fromArgv = (flag: string) => given.get(flag);
    const fromEnv = (name: string | undefined) => (name && env[name]) || undefined;
    const values: Record<string, unknown> = {};
    for (const [name, f] of entries) {
      // Where a value may come from, first found wins: the flag, its old names, its variable,
      // the old variables. `label` names the place as the user wrote it, for warnings.
      const cli = fromArgv(name);
      const old = f.deprecated ?? [];
      const sources: { value: string | undefined; label: string; old?: Deprecated }[] = [
        { value: cli, label: `--${name}` },
        ...old.flatMap((d) => (d.flag ? [{ value: fromArgv(d.flag), label: `--${d.flag}`, old: d }] : [])),
        { value: fromEnv(f.env), label: f.env ?? "" },
        ...old.flatMap((d) => (d.env ? [{ value: fromEnv(d.env), label: d.env, old: d }] : [])),
      ];
      const found = sources.find((src) => src.value !== undefined);
      let raw = found?.value;
      const label = found?.label ?? "";
      if (found?.old && raw !== undefined) {
        const successor = label.startsWith("--") ? `--${name}` : (f.env ?? `--${name}`);
        raw = fromOld(f, raw, found.old, label, successor, warn);
      }
      if (raw !== undefined && f.kind === "duration" && BARE_NUMBER.test(raw) && raw !== "0") {
        const unit = f.bareUnit ?? "s";
        const now = formatDuration(Number(raw) * unitMs(unit));
        warn(`${label}=${raw} has no unit and is read as ${unitName(unit)} (deprecated): write ${now}`);
        raw = now;
      }
      if (raw === undefined && f.default === undefined) {
        values[name] = f.kind === "bool" ? false : f.kind === "list" ? [] : undefined;
        continue;
      }
      raw ??= String(f.default);
      const problem = check(name, f, raw);
      if (problem) throw new Error(`${describe(name)} ${problem}, got "${raw}"`);
      values[name] = convert(f, raw);
    }
    return values as FlagValues<S>;
  };

  const usage = () => {
    const rows = entries.map(([name, f]) => [`--${name} ${argument(f)}`, helpLine(f)] as const);
    const width = Math.max(...rows.map(([term]) => term.length), HELP_TERM.length);
    const text = [
      `Usage: agentry ${program} ${options.usage ?? "[options]"}`,
      "",
      ...(options.description ? [options.description, ""] : []),
      "Options:",
      ...[...rows, [HELP_TERM, "print this help"] as const].map(([term, help]) =>
        wrap(`  ${term.padEnd(width)}  `, help),
      ),
      "",
    ].join("\n");
    const renamed = entries.flatMap(([name, f]) =>
      (f.deprecated ?? []).map((d) => {
        const old = [d.flag && `--${d.flag}`, d.env].filter(Boolean).join(", ");
        return `  ${old} → --${name}${d.unit ? ` (a bare number is read as ${unitName(d.unit)})` : ""}`;
      }),
    );
    const notes = [
      "Durations are Go-style: 500ms, 30s, 5m, 1h30m, 720h. A value may also come from the environment",
      "variable named beside its flag; the flag wins.",
      ...(renamed.length ? ["", "Deprecated (still accepted, with a warning on stderr):", ...renamed] : []),
    ];
    return `${text}\n${notes.join("\n")}\n`;
  };

  return { flags, parse, usage, describe };
}

const HELP_TERM = "-h, --help";
/** Columns of --help. */
const HELP_WIDTH = 110;

/** `text` after `lead`, its words wrapped at HELP_WIDTH under the column `lead` ends at. */
function wrap(lead: string, text: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && lead.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines
    .map((l, i) => (i === 0 ? lead : " ".repeat(lead.length)) + l)
    .join("\n")
    .trimEnd();
}

function argument(f: Flag): string {
  switch (f.kind) {
    case "bool":
      return "[bool]";
    case "duration":
      return "<duration>";
    case "int":
    case "number":
      return "<n>";
    case "list":
      return "<a,b,...>";
    case "addr":
      return "<host:port>";
    default:
      return "<value>";
  }
}

/** A flag's line of --help: its text, then its choices, default and variable. */
function helpLine(f: Flag): string {
  const extra = [
    f.kind === "string" && f.choices ? `choices: ${f.choices.map((c) => JSON.stringify(c)).join(", ")}` : "",
    f.default === undefined
      ? ""
      : `default: ${JSON.stringify(f.kind === "bool" ? String(f.default) : f.default)}`,
    f.env ? `env: ${f.env}` : "",
  ].filter(Boolean);
  const text = f.kind === "bool" ? `${f.help} (true|false)` : f.help;
  return extra.length ? `${text} (${extra.join(", ")})` : text;
}

function unitName(unit: OldUnit): string {
  const names: Record<OldUnit, string> = {
    d: "days",
    ns: "nanoseconds",
    us: "microseconds",
    µs: "microseconds",
    ms: "milliseconds",
    s: "seconds",
    m: "minutes",
    h: "hours",
  };
  return names[unit];
}

/** An old flag or variable's value in the new form, with a warning. */
function fromOld(
  f: Flag,
  value: string,
  d: Deprecated,
  oldName: string,
  newName: string,
  warn: Warn,
): string {
  let now = value;
  if (f.kind === "duration" && d.unit && BARE_NUMBER.test(value))
    now = formatDuration(Number(value) * oldUnitMs(d.unit));
  warn(`${oldName} is deprecated; use ${newName}=${now}${d.unit ? ` (${value} ${unitName(d.unit)})` : ""}`);
  return now;
}

const list = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** "host:port", "[::1]:port" or ":port" (host 0.0.0.0); undefined when it is none of these. */
export function addr(text: string): Addr | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) return undefined;
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/** The log level flag every program has. */
export const logLevelFlag = {
  kind: "string",
  env: "AGENTRY_LOG_LEVEL",
  help: "least level logged",
  choices: ["error", "warn", "info", "http", "verbose", "debug", "silly"],
  default: "info",
} as const satisfies Flag;

/** Where a program serves Prometheus /metrics, apart from its API. */
export const metricsAddrFlag = <E extends string>(env: E, port = 9090) =>
  ({
    kind: "addr",
    env,
    help: "host:port of /metrics (Prometheus), apart from the API (whose port answers it 404)",
    default: `0.0.0.0:${port}`,
  }) as const satisfies Flag;

/** What is wrong with `raw` as a value of `f` ("must be ..."), or undefined. */
function check(name: string, f: Flag, raw: string): string | undefined {
  switch (f.kind) {
    case "bool":
      return /^(true|false|1|0)$/i.test(raw) ? undefined : "must be true or false";
    case "int":
    case "number": {
      const n = Number(raw);
      const ok = raw.trim() !== "" && (f.kind === "int" ? Number.isInteger(n) : Number.isFinite(n));
      const min = f.min ?? -Infinity;
      const max = f.max ?? Infinity;
      if (ok && n >= min && n <= max) return undefined;
      const what = f.kind === "int" ? "an integer" : "a number";
      if (min > -Infinity && max < Infinity) return `must be ${what} from ${min} to ${max}`;
      if (min > -Infinity) return `must be ${what} >= ${min}`;
      if (max < Infinity) return `must be ${what} <= ${max}`;
      return `must be ${what}`;
    }
    case "duration": {
      const ms = durationMs(raw);
      if (ms === undefined) return "must be a duration such as 30s, 5m or 720h";
      const min = f.min === undefined ? undefined : durationMs(f.min);
      const max = f.max === undefined ? undefined : durationMs(f.max);
      if (min === undefined ? ms <= 0 : ms < min)
        return min === undefined || min === 0 ? "must be longer than 0" : `must be at least ${f.min}`;
      if (max !== undefined && ms > max) return `must be at most ${f.max}`;
      return undefined;
    }
    case "string":
      if (f.choices && !f.choices.includes(raw)) return `must be one of ${f.choices.join(", ")}`;
      return undefined;
    case "list":
      return undefined;
    case "addr":
      return addr(raw) ? undefined : "must be host:port (port 0-65535)";
    default:
      return `has an unknown kind (--${name})`;
  }
}

function convert(f: Flag, raw: string): unknown {
  switch (f.kind) {
    case "bool":
      return /^(true|1)$/i.test(raw);
    case "int":
    case "number":
      return Number(raw);
    case "duration":
      return durationMs(raw);
    case "list":
      return list(raw);
    case "addr":
      return addr(raw);
    default:
      return raw;
  }
}
