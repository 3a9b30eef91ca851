// Go-style durations, the one form every agentry flag and CRD field takes: "500ms", "30s",
// "5m", "1h30m", "720h" (Go's time.ParseDuration without the sign; "0" alone is zero).
const UNIT_MS = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export type DurationUnit = keyof typeof UNIT_MS;

/** Milliseconds in one `unit`. */
export const unitMs = (unit: DurationUnit): number => UNIT_MS[unit];

const WHOLE = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;

/** Milliseconds of a Go-style duration, or undefined when `text` is not one. */
export function durationMs(text: string): number | undefined {
  if (text === "0") return 0;
  if (!WHOLE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2] as DurationUnit];
  // Whole nanoseconds, as Go counts them (1.1 * 1000 is not exactly 1100 in floating point);
  // beyond about 100 days a double has no room for nanoseconds: whole milliseconds then.
  return total < 9e9 ? Math.round(total * 1e6) / 1e6 : Math.round(total);
}

/** Milliseconds of a Go-style duration that was validated already (a CRD field); throws if not. */
export function validDurationMs(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new Error(`invalid duration "${text}"`);
  return ms;
}

/** Milliseconds of a Go-style duration; an error naming `--flag` when it is not one. */
export function parseDuration(flag: string, text: string): number {
  const ms = durationMs(text);
  if (ms === undefined)
    throw new Error(`--${flag} must be a duration such as 30s, 5m or 720h, got "${text}"`);
  return ms;
}

/** The shortest Go-style spelling of `ms` (whole units, largest first): 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`not a duration: ${ms}`);
  if (ms === 0) return "0s";
  let rest = ms;
  let text = "";
  for (const unit of ["h", "m", "s"] as const) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) text += `${n}${unit}`;
    rest -= n * UNIT_MS[unit];
  }
  if (rest > 0) text += `${Number(rest.toFixed(6))}ms`;
  return text;
}
