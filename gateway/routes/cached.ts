// Reads answered from the gateway's cache: the caller must be allowed the read by a
// SubjectAccessReview (remembered briefly, auth/access.ts), then the cache answers if it
// can. Whenever either says no, the route asks the apiserver as the caller, as it did before
// the cache: the same answer, 403 and 404 included, only slower. Every read is counted by
// where its answer came from (agentry_gateway_reads_total).
import type { Response } from "express";
import type { AccessQuestion, AccessReview } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import type { ReadCache } from "../cache/readcache.ts";
import type { GatewayMetrics } from "../metrics.ts";

export interface CachedReads {
  cache: ReadCache | undefined;
  review: AccessReview;
  metrics: GatewayMetrics;
}

type Answer = { ok: true } | { ok: false; reason: string };

/** Counts a read: from the cache, or from the apiserver and why. */
export function countRead(deps: CachedReads, kind: string, verb: string, answer: Answer): void {
  deps.metrics.reads.inc({
    kind,
    verb,
    source: answer.ok ? "cache" : "apiserver",
    reason: answer.ok ? "" : answer.reason,
  });
}

/**
 * The cache's answer to `serve` when the caller may `q`; undefined when the apiserver must
 * answer (counted either way).
 */
export async function fromCache<T extends Answer>(
  deps: CachedReads,
  res: Response,
  kind: string,
  q: AccessQuestion,
  serve: (cache: ReadCache) => Promise<T>,
): Promise<(T & { ok: true }) | undefined> {
  let answer: Answer;
  if (!deps.cache) answer = { ok: false, reason: "off" };
  else if (!(await deps.review(res.locals.identity as Identity, q)).allowed)
    answer = { ok: false, reason: "denied" };
  else answer = await serve(deps.cache);
  countRead(deps, kind, q.verb, answer);
  return answer.ok ? (answer as T & { ok: true }) : undefined;
}

/** Sends JSON built by the cache, with the headers res.json would give it. */
export function sendJson(res: Response, body: string): void {
  res.type("application/json").send(body);
}
