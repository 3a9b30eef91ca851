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

/** Deep equality of two status objects (key order does not matter). */
export function sameStatus(a: unknown, b: unknown): boolean {
  return stableStringify(a ?? {}) === stableStringify(b ?? {});
}
