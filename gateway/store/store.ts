// The gateway's database: the audit log of every write and the idempotency keys of POSTs,
// in PostgreSQL through `pg` (a real server, or the embedded PGlite over a loopback socket).
// Any database failure becomes a 503 problem, so a write never reaches the cluster
// without its audit record.
import pg from "pg";
import { problemOf } from "../problem.ts";
import { errorMessage } from "../../lib/log.ts";

export interface AuditStart {
  requestId: string;
  actor: string;
  groups: string[];
  verb: string;
  kind: string;
  namespace: string;
  name?: string | undefined;
}

export interface StoredResponse {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export type IdempotencyClaim =
  | { state: "new" }
  | { state: "replay"; response: StoredResponse }
  | { state: "mismatch" }
  | { state: "in-flight" };

export interface Store {
  beginAudit(entry: AuditStart): Promise<string>;
  finishAudit(id: string, outcome: "succeeded" | "failed", status: number, detail?: string): Promise<void>;
  claimIdempotency(actor: string, key: string, requestHash: string): Promise<IdempotencyClaim>;
  saveIdempotency(actor: string, key: string, response: StoredResponse): Promise<void>;
  releaseIdempotency(actor: string, key: string): Promise<void>;
  /** Deletes audit records past their retention and expired Idempotency-Keys; counts what went. */
  prune(): Promise<{ audit: number; idempotency: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    query_timeout: 10_000,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on("error", () => undefined);
  return pool;
}

function unavailable(err: unknown): Error {
  const msg = errorMessage(err);
  return problemOf(
    503,
    `the gateway's audit database is unavailable (${msg}); nothing was written, retry later`,
    {
      extra: { cause: "database" },
      headers: { "retry-after": "5" },
    },
  );
}

export interface RetentionOptions {
  /** Audit records older than this are deleted by prune(); 0 keeps them forever. */
  auditRetentionMs: number;
  /** After this an Idempotency-Key is forgotten: a new request may use it again. */
  idempotencyTtlMs: number;
}

export const DEFAULT_RETENTION: RetentionOptions = {
  auditRetentionMs: 90 * 86_400_000,
  idempotencyTtlMs: 24 * 3_600_000,
};

/** Rows deleted per statement, so pruning never holds long locks. */
const PRUNE_BATCH = 5000;

export class PgStore implements Store {
  private readonly pool: pg.Pool;
  private readonly retention: RetentionOptions;
  constructor(pool: pg.Pool, retention: RetentionOptions = DEFAULT_RETENTION) {
    this.pool = pool;
    this.retention = retention;
  }

  private async q<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async beginAudit(e: AuditStart): Promise<string> {
    const r = await this.q<{ id: string }>(
      `INSERT INTO audit_log (request_id, actor, groups, verb, kind, namespace, name)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [e.requestId, e.actor, e.groups, e.verb, e.kind, e.namespace, e.name ?? null],
    );
    return r.rows[0]!.id;
  }

  async finishAudit(
    id: string,
    outcome: "succeeded" | "failed",
    status: number,
    detail?: string,
  ): Promise<void> {
    await this.q(
      "UPDATE audit_log SET outcome = $2, status = $3, detail = $4, completed_at = now() WHERE id = $1",
      [id, outcome, status, detail ?? null],
    );
  }

  async claimIdempotency(actor: string, key: string, requestHash: string): Promise<IdempotencyClaim> {
    // A key past its time to live counts as new (whether or not prune() has run yet).
    const ins = await this.q(
      `INSERT INTO idempotency_keys (actor, key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT (actor, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, status = NULL, response = NULL, headers = NULL,
             created_at = now()
         WHERE idempotency_keys.created_at < now() - $4 * interval '1 millisecond'`,
      [actor, key, requestHash, this.retention.idempotencyTtlMs],
    );
    if (ins.rowCount === 1) return { state: "new" };
    const r = await this.q<{
      request_hash: string;
      status: number | null;
      response: unknown;
      headers: unknown;
    }>("SELECT request_hash, status, response, headers FROM idempotency_keys WHERE actor = $1 AND key = $2", [
      actor,
      key,
    ]);
    const row = r.rows[0];
    if (!row) return this.claimIdempotency(actor, key, requestHash); // released meanwhile
    if (row.request_hash !== requestHash) return { state: "mismatch" };
    if (row.status === null) return { state: "in-flight" };
    return {
      state: "replay",
      response: {
        status: row.status,
        body: row.response,
        headers: (row.headers ?? {}) as Record<string, string>,
      },
    };
  }

  async saveIdempotency(actor: string, key: string, response: StoredResponse): Promise<void> {
    await this.q(
      "UPDATE idempotency_keys SET status = $3, response = $4, headers = $5 WHERE actor = $1 AND key = $2",
      [actor, key, response.status, JSON.stringify(response.body ?? null), JSON.stringify(response.headers)],
    );
  }

  async releaseIdempotency(actor: string, key: string): Promise<void> {
    await this.q("DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND status IS NULL", [
      actor,
      key,
    ]);
  }

  async prune(): Promise<{ audit: number; idempotency: number }> {
    const sweep = async (table: string, column: string, key: string, ageMs: number) => {
      let total = 0;
      for (;;) {
        const r = await this.q(
          `DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table}
             WHERE ${column} < now() - $1 * interval '1 millisecond' LIMIT ${PRUNE_BATCH})`,
          [ageMs],
        );
        total += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < PRUNE_BATCH) return total;
      }
    };
    const { auditRetentionMs, idempotencyTtlMs } = this.retention;
    return {
      audit: auditRetentionMs > 0 ? await sweep("audit_log", "at", "id", auditRetentionMs) : 0,
      idempotency: await sweep("idempotency_keys", "created_at", "actor, key", idempotencyTtlMs),
    };
  }

  async ping(): Promise<void> {
    await this.q("SELECT 1", []);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
