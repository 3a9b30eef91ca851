// The sandbox container's resources: the template's, with an ephemeral-storage request and
// limit derived from template.storage (the two emptyDir volumes plus room for logs), and the
// Kubernetes quantity arithmetic that needs. Pure.
import type { SandboxFleet } from "../../../api/v1alpha1/index.ts";

/** Room for the container's logs in its ephemeral-storage limit, beyond the two volumes. */
const LOG_ROOM = 256n * 1024n * 1024n;
const EPHEMERAL = "ephemeral-storage";

/**
 * The sandbox container's resources: the template's, with ephemeral-storage added from
 * template.storage where the template does not set it (limit: both volumes plus room for
 * logs; request: storage.ephemeralStorageRequest, at most the limit).
 */
export function sandboxResources(t: SandboxFleet["spec"]["template"]): {
  requests: Record<string, string | number>;
  limits: Record<string, string | number>;
} {
  const requests = { ...(t.resources?.requests ?? {}) };
  const limits = { ...(t.resources?.limits ?? {}) };
  const s = t.storage;
  limits[EPHEMERAL] ??= formatBytes(
    quantityBytes(s.workspaceSizeLimit) + quantityBytes(s.tmpSizeLimit) + LOG_ROOM,
  );
  if (requests[EPHEMERAL] === undefined) {
    const request = quantityBytes(s.ephemeralStorageRequest);
    const limit = quantityBytes(limits[EPHEMERAL]);
    requests[EPHEMERAL] = request <= limit ? String(s.ephemeralStorageRequest) : String(limits[EPHEMERAL]);
  }
  return { requests, limits };
}

const SUFFIX: Record<string, bigint> = {
  "": 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
};

/** Bytes of a Kubernetes quantity (rounded up); throws on what is not one. */
export function quantityBytes(q: string | number): bigint {
  const m = /^\+?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+)|(m|k|[MGTPE]i?|Ki))?$/.exec(String(q).trim());
  if (!m || (m[1] === "" && !m[2])) throw new Error(`"${q}" is not a quantity`);
  const digits = BigInt(`${m[1] || "0"}${m[2] ?? ""}`);
  let scale = 10n ** BigInt((m[2] ?? "").length);
  let multiplier = 1n;
  if (m[3] !== undefined) {
    const exp = Number(m[3]);
    if (exp >= 0) multiplier = 10n ** BigInt(exp);
    else scale *= 10n ** BigInt(-exp);
  } else if (m[4] === "m") scale *= 1000n;
  else multiplier = SUFFIX[m[4] ?? ""]!;
  const product = digits * multiplier;
  return (product + scale - 1n) / scale;
}

/** A byte count as a quantity: the largest binary suffix that divides it exactly. */
export function formatBytes(bytes: bigint): string {
  for (const suffix of ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"])
    if (bytes > 0n && bytes % SUFFIX[suffix]! === 0n) return `${bytes / SUFFIX[suffix]!}${suffix}`;
  return String(bytes);
}
