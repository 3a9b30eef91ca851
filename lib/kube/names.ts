// Deterministic, DNS-safe names for the objects the operator makes, and stable hashes.
import { createHash } from "node:crypto";

/** Stable JSON: object keys sorted, so equal values always hash the same. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** A short hash (10 lowercase base-36 characters) of any JSON value. */
export function shortHash(value: unknown, length = 10): string {
  const digest = createHash("sha256").update(stableStringify(value)).digest();
  return BigInt(`0x${digest.subarray(0, 12).toString("hex")}`)
    .toString(36)
    .padStart(length, "0")
    .slice(0, length);
}

/**
 * `<base>-<suffix>` (or `<base>`) as a DNS-1123 label of at most 63 characters. Names that
 * would be longer are cut and end in a hash of the full name, so they stay unique and stable.
 */
export function childName(base: string, suffix = "", max = 63): string {
  const full = suffix ? `${base}-${suffix}` : base;
  if (full.length <= max) return full;
  const hash = shortHash(full, 8);
  const keep = max - hash.length - 1 - (suffix ? suffix.length + 1 : 0);
  const head = base.slice(0, Math.max(1, keep)).replace(/-+$/, "");
  return suffix ? `${head}-${suffix}-${hash}` : `${head}-${hash}`;
}
