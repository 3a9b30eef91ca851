// References to other objects of the same namespace that must exist when they are set.
// Only references that are new or changed in this request are checked: a Secret deleted
// later must not block an unrelated update (that is the operator's condition to report).
import type { EnvVar } from "../../api/v1alpha1/index.ts";
import type { Findings, Lookup } from "./types.ts";

/** A reference to a Secret (and optionally one key of it) found at `field`. */
export interface SecretRef {
  field: string;
  name: string;
  key?: string;
}

interface EnvFrom {
  secretRef?: { name: string };
}

/** Secret references of an env list and an envFrom list (optional ones are skipped). */
export function envSecretRefs(field: string, env: EnvVar[] | undefined, envFrom?: EnvFrom[]): SecretRef[] {
  const refs: SecretRef[] = [];
  for (const [i, e] of (env ?? []).entries()) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref && !ref.optional)
      refs.push({ field: `${field}.env[${i}].valueFrom.secretKeyRef`, name: ref.name, key: ref.key });
  }
  for (const [i, e] of (envFrom ?? []).entries()) {
    if (e.secretRef) refs.push({ field: `${field}.envFrom[${i}].secretRef`, name: e.secretRef.name });
  }
  return refs;
}

const refKey = (r: SecretRef) => `${r.name}\u0000${r.key ?? ""}`;

/** The references of `now` that `before` did not already have. */
export function newRefs(now: SecretRef[], before: SecretRef[] | undefined): SecretRef[] {
  if (!before) return now;
  const old = new Set(before.map(refKey));
  return now.filter((r) => !old.has(refKey(r)));
}

/** Denies each reference whose Secret (or key) does not exist in `namespace`. */
export async function checkSecretRefs(
  f: Findings,
  namespace: string,
  refs: SecretRef[],
  lookup: Lookup,
): Promise<void> {
  for (const ref of refs) {
    const keys = await lookup.secretKeys(namespace, ref.name);
    if (keys === null) continue;
    if (keys === undefined) {
      f.deny(
        `${ref.field}.name`,
        `Secret "${ref.name}" does not exist in namespace "${namespace}"; create it first (kubectl create secret generic ${ref.name} -n ${namespace} ...) or fix the name`,
      );
    } else if (ref.key !== undefined && !keys.includes(ref.key)) {
      const has = keys.length ? `it has ${keys.map((k) => `"${k}"`).join(", ")}` : "it has no keys";
      f.deny(
        `${ref.field}.key`,
        `Secret "${ref.name}" has no key "${ref.key}" (${has}); add the key to the Secret or fix the key name`,
      );
    }
  }
}

/** Denies a reference to another agentry object that does not exist. */
export function missing(
  f: Findings,
  field: string,
  kind: string,
  name: string,
  namespace: string,
  hint: string,
): void {
  f.deny(field, `${kind} "${name}" does not exist in namespace "${namespace}"; ${hint}`);
}
