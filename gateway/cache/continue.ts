// Continue tokens in the apiserver's own format (k8s.io/apiserver storage: base64url, no
// padding, of {"v":"meta.k8s.io/v1","rv":<list resourceVersion>,"start":<next key>}), so a
// page the cache answered can be continued by the apiserver and the other way round. The
// key is relative to the list's prefix: `/name` within a namespace, `/namespace/name`
// across namespaces (as Kubernetes 1.36 writes it); "start" is the last key given plus NUL
// (the next page begins after it). Here keys go without the leading slash.
export interface ContinueToken {
  /** The resourceVersion of the list the pages belong to. */
  rv: number;
  /** Keys from this one on (inclusive) come next. */
  start: string;
}

const VERSION = "meta.k8s.io/v1";

export function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: VERSION, rv, start: `/${lastKey}\u0000` })).toString("base64url");
}

/** The token, or undefined when it is not one of this format (the apiserver then judges it). */
export function decodeContinue(token: string): ContinueToken | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  const t = parsed as { v?: unknown; rv?: unknown; start?: unknown };
  if (t.v !== VERSION || typeof t.start !== "string" || !t.start.startsWith("/")) return undefined;
  if (typeof t.rv !== "number" || !Number.isSafeInteger(t.rv) || t.rv <= 0) return undefined;
  return { rv: t.rv, start: t.start.slice(1) };
}

/** A resourceVersion as a number, or undefined when it is not a plain decimal (etcd's are). */
export function revision(rv: string | undefined): number | undefined {
  if (rv === undefined || !/^[1-9][0-9]{0,15}$/.test(rv)) return undefined;
  const n = Number(rv);
  return Number.isSafeInteger(n) ? n : undefined;
}
