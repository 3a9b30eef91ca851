// Every write goes through here: an idempotency check (Idempotency-Key), the admission
// check (a denial ends the request here: no audit record, the key is released), a pending
// audit record BEFORE the cluster is touched (no database, no write: 503), the write itself
// as the caller (impersonated), then the stored response for retries; the audit outcome is
// queued and written off the response path.
import { createHash } from "node:crypto";
import type { Request, Response } from "express";
import type { Logger } from "../../lib/log.ts";
import type { Identity } from "../auth/identity.ts";
import { problemBody, problemOf, toProblem } from "../problem.ts";
import type { Store, StoredResponse } from "../store/store.ts";
import { errorMessage } from "../../lib/log.ts";

export interface WriteTarget {
  verb: "create" | "replace" | "patch" | "delete" | "run";
  kind: string;
  namespace: string;
  name?: string | undefined;
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

function requestHash(req: Request): string {
  return createHash("sha256")
    .update(`${req.method} ${req.originalUrl.split("?")[0]}\n${JSON.stringify(req.body ?? null)}`)
    .digest("hex");
}

function send(res: Response, r: StoredResponse): void {
  for (const [k, v] of Object.entries(r.headers)) res.setHeader(k, v);
  const problem = r.status >= 400;
  res
    .status(r.status)
    .type(problem ? "application/problem+json" : "application/json")
    .send(JSON.stringify(r.body));
}

/**
 * Runs `action` as an audited write. `check` runs first (after an idempotent replay is
 * answered) and throws to refuse the write. `action` returns the response to send; a thrown
 * error becomes a problem response (and a failed audit record).
 */
export async function auditedWrite(
  deps: { store: Store; log: Logger },
  req: Request,
  res: Response,
  target: WriteTarget,
  action: () => Promise<StoredResponse>,
  check?: () => Promise<void>,
): Promise<void> {
  const identity = res.locals.identity as Identity;
  const requestId = res.locals.requestId as string;
  const key = req.method === "POST" ? req.get("idempotency-key") : undefined;
  if (key !== undefined) {
    if (!KEY_PATTERN.test(key))
      throw problemOf(400, "the Idempotency-Key header must be 1-255 visible ASCII characters");
    const claim = await deps.store.claimIdempotency(identity.user, key, requestHash(req));
    if (claim.state === "replay") {
      res.setHeader("idempotent-replayed", "true");
      return send(res, claim.response);
    }
    if (claim.state === "mismatch")
      throw problemOf(422, "this Idempotency-Key was already used with a different request; use a new key", {
        type: "idempotency-key-reused",
      });
    if (claim.state === "in-flight")
      throw problemOf(409, "a request with this Idempotency-Key is still being processed; retry shortly", {
        type: "idempotency-key-in-flight",
        headers: { "retry-after": "1" },
      });
  }
  let auditId: string;
  try {
    await check?.();
    auditId = await deps.store.beginAudit({
      requestId,
      actor: identity.user,
      groups: identity.groups,
      ...target,
    });
  } catch (err) {
    if (key !== undefined) await deps.store.releaseIdempotency(identity.user, key).catch(() => undefined);
    throw err;
  }
  let response: StoredResponse;
  let failed = false;
  try {
    response = await action();
  } catch (err) {
    failed = true;
    const p = toProblem(err);
    const headers = { ...(p.init.headers ?? {}) };
    response = { status: p.status, body: problemBody(p.init, req.originalUrl, requestId), headers };
  }
  // The outcome is queued, written off the response path (store/outcomes.ts): the pending
  // record is already in the database. A stored Idempotency-Key answer is awaited, so a retry
  // after this answer finds it.
  deps.store.finishAudit(
    auditId,
    failed ? "failed" : "succeeded",
    response.status,
    failed ? String((response.body as { detail?: string }).detail ?? "") : undefined,
  );
  if (key !== undefined) {
    try {
      if (failed) await deps.store.releaseIdempotency(identity.user, key);
      else await deps.store.saveIdempotency(identity.user, key, response);
    } catch (err) {
      // The write happened (or failed) already, with its audit record. Say so in the log.
      deps.log.error("could not store the answer of an Idempotency-Key", {
        requestId,
        auditId,
        error: errorMessage(err),
      });
    }
  }
  send(res, response);
}
