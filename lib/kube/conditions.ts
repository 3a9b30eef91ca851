// Standard conditions: a new condition keeps its lastTransitionTime while its status does
// not change, so recomputing the same state yields an identical status (and no write).
import type { Condition } from "../../api/v1alpha1/index.ts";
import { stableStringify } from "./names.ts";

export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/** Merges computed conditions into the current ones, keeping transition times where status holds. */
export function mergeConditions(
  current: Condition[] | undefined,
  computed: ConditionInput[],
  now: Date,
): Condition[] {
  return computed.map((c) => {
    const prior = current?.find((p) => p.type === c.type);
    const lastTransitionTime =
      prior && prior.status === c.status
        ? prior.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, "Z");
    return { ...c, lastTransitionTime };
  });
}

/** Deep equality of two JSON values, key order aside; undefined equals {} (an absent map). */
export function sameJson(a: unknown, b: unknown): boolean {
  return stableStringify(a ?? {}) === stableStringify(b ?? {});
}

/** Deep equality of two status objects (key order does not matter). */
export const sameStatus = sameJson;

/** Equality of two label (or annotation) maps; absent equals empty. */
export const sameLabels = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
  sameJson(a, b);

/** Where a resource stands in kstatus's terms. */
export type Progress = "Current" | "Reconciling" | "Stalled";

export interface Verdict {
  progress: Progress;
  reason: string;
  message: string;
}

/**
 * The standard conditions of a verdict: Ready (True only when Current), and Reconciling or
 * Stalled with the same reason and message while the verdict is one of those; a False
 * abnormal condition is left out, as the kstatus conventions ask.
 */
export function standardConditions(v: Verdict, generation: number | undefined): ConditionInput[] {
  const common = {
    reason: v.reason,
    message: v.message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return [
    { type: "Ready", status: v.progress === "Current" ? "True" : "False", ...common },
    ...(v.progress === "Current" ? [] : [{ type: v.progress, status: "True" as const, ...common }]),
  ];
}

/** Default bound after which a wait that depends on someone else (a missing reference, no node) stalls. */
export const STALL_AFTER_MS = 5 * 60_000;

/** Whether a wait that began at `since` (an RFC 3339 time or a Date) has outlasted `boundMs` at `now`. */
export function waitedTooLong(since: string | Date | undefined, now: Date, boundMs: number): boolean {
  const t = since instanceof Date ? since.getTime() : since ? Date.parse(since) : NaN;
  return Number.isFinite(t) && now.getTime() - t >= boundMs;
}
