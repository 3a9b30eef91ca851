// Go-style durations for flags: "500ms", "30s", "5m", "1h30m", "720h".
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go-style duration; an error naming `--flag` when it is not one. */
export function parseDuration(flag: string, text: string): number {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text))
    throw new Error(`--${flag} must be a duration such as 30s, 5m or 720h, got "${text}"`);
  return [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)].reduce(
    (total, m) => total + Number(m[1]) * UNIT_MS[m[2]!]!,
    0,
  );
}
