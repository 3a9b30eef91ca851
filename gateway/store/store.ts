// The gateway's database: the audit log of every write and the idempotency keys of POSTs,
// in PostgreSQL through `pg` (a real server, or the embedded PGlite over a loopback socket).
// Any database failure becomes a 503 problem, so a write never reaches the cluster
// without its audit record. Pending records of writes made close together share one INSERT
// (batch.ts); the records' outcomes are written off the response path, in batches
// (outcomes.ts).
import pg from "pg";
import { problemOf } from "../problem.ts";
import { errorMessage, type Logger } from "../../lib/log.ts";
import { Batcher } from "./batch.ts";
import { OutcomeQueue, type AuditOutcome } from "./outcomes.ts";

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
  /** The pending audit record; resolves once it is in the database (else 503). */
  beginAudit(entry: AuditStart): Promise<string>;
  /** Queues the record's outcome; it is written shortly after, off the response path. */
  finishAudit(id: string, outcome: "succeeded" | "failed", status: number, detail?: string): void;
  /** Waits (at most `timeoutMs`) for the queued outcomes to be written; false if some are not. */
  flushAudits(timeoutMs: number): Promise<boolean>;
  claimIdempotency(actor: string, key: string, requestHash: string): Promise<IdempotencyClaim>;
  saveIdempotency(actor: string, key: string, response: StoredResponse): Promise<void>;
  releaseIdempotency(actor: string, key: string): Promise<void>;
  /** Deletes audit records past their retention and expired Idempotency-Keys; counts what went. */
  prune(): Promise<{ audit: number; idempotency: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connections of the gateway's pool by default. The pending audit records take at most two
 * (one INSERT each for the writes that came together, about a millisecond on a near
 * database), the outcome writer one per batch, an Idempotency-Key two or three statements
 * more per POST; ten serve thousands of writes a second, far above what the apiserver takes
 * (see README: "PostgreSQL pool").
 */
export const DEFAULT_POOL_SIZE = 10;

export function createPool(url: string, max = DEFAULT_POOL_SIZE): pg.Pool {
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

interface AuditRow {
  id: string;
  request_id: string;
  actor: string;
  verb: string;
  kind: string;
  namespace: string;
  name: string | null;
}

const startKey = (e: AuditStart) =>
  JSON.stringify([e.requestId, e.actor, e.verb, e.kind, e.namespace, e.name ?? null]);
const rowKey = (r: AuditRow) => JSON.stringify([r.request_id, r.actor, r.verb, r.kind, r.namespace, r.name]);

/**
 * The id of each of `starts` among the rows one INSERT returned: PostgreSQL returns them in
 * the order of VALUES, and each is checked against its row. Rows alike in every field told
 * (two writes of one request id to the same object) are interchangeable.
 */
export function idsInOrder(starts: AuditStart[], rows: AuditRow[]): string[] {
  if (rows.length !== starts.length)
    throw new Error(`the audit INSERT returned ${rows.length} rows for ${starts.length}`);
  if (starts.every((e, i) => startKey(e) === rowKey(rows[i]!))) return rows.map((r) => r.id);
  const byKey = new Map<string, string[]>();
  for (const r of rows) byKey.set(rowKey(r), [...(byKey.get(rowKey(r)) ?? []), r.id]);
  return starts.map((e) => {
    const id = byKey.get(startKey(e))?.shift();
    if (id === undefined)
      throw new Error("the audit INSERT returned rows that do not match what was written");
    return id;
  });
}

/**
 * Pending audit records per INSERT at most, and INSERTs of them running at once at most: a
 * write waits for its own record (store.beginAudit), and under load many share a statement.
 */
export const AUDIT_BATCH = { maxBatch: 200, maxInFlight: 2 };

export class PgStore implements Store {
  private readonly pool: pg.Pool;
  private readonly retention: RetentionOptions;
  private readonly outcomes: OutcomeQueue;
  private readonly starts = new Batcher<AuditStart, string>((batch) => this.insertAudits(batch), AUDIT_BATCH);
  constructor(pool: pg.Pool, retention: RetentionOptions = DEFAULT_RETENTION, log?: Logger) {
    this.pool = pool;
    this.retention = retention;
    let lastWarning = 0;
    this.outcomes = new OutcomeQueue((batch) => this.completeAudits(batch), {
      onError: (err, info) => {
        // At most one line every 10 s while the database is away.
        if (Date.now() - lastWarning < 10_000) return;
        lastWarning = Date.now();
        log?.error("could not write audit outcomes; retrying (records stay pending until then)", {
          error: errorMessage(err),
          ...info,
        });
      },
    });
  }

  /** Audit outcomes queued and not written yet. */
  get pendingOutcomes(): number {
    return this.outcomes.pending;
  }

  private async q<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw unavailable(err);
    }
  }

  beginAudit(e: AuditStart): Promise<string> {
    return this.starts.add(e);
  }

  /**
   * Pending records of writes made close together, in one INSERT (the Batcher gathers
   * them). Should the statement fail with more than one row, each row is tried on its own,
   * so a row the database refuses fails its own write only.
   */
  private async insertAudits(batch: AuditStart[]): Promise<PromiseSettledResult<string>[]> {
    try {
      const ids = await this.insertAuditRows(batch);
      return ids.map((value) => ({ status: "fulfilled", value }));
    } catch (err) {
      if (batch.length === 1) return [{ status: "rejected", reason: err }];
      return Promise.allSettled(batch.map(async (e) => (await this.insertAuditRows([e]))[0]!));
    }
  }

  private async insertAuditRows(rows: AuditStart[]): Promise<string[]> {
    const params: unknown[] = [];
    const values = rows.map((e) => {
      const n = params.push(e.requestId, e.actor, e.groups, e.verb, e.kind, e.namespace, e.name ?? null);
      return `(${Array.from({ length: 7 }, (_, i) => `$${n - 6 + i}`).join(", ")})`;
    });
    const r = await this.q<AuditRow>(
      `INSERT INTO audit_log (request_id, actor, groups, verb, kind, namespace, name)
       VALUES ${values.join(", ")} RETURNING id, request_id, actor, verb, kind, namespace, name`,
      params,
    );
    return idsInOrder(rows, r.rows);
  }

  finishAudit(id: string, outcome: "succeeded" | "failed", status: number, detail?: string): void {
    this.outcomes.push({ id, outcome, status, detail, at: new Date() });
  }

  flushAudits(timeoutMs: number): Promise<boolean> {
    return this.outcomes.flush(timeoutMs);
  }

  /** Writes a batch of outcomes in one statement. */
  async completeAudits(batch: AuditOutcome[]): Promise<void> {
    await this.q(
      `UPDATE audit_log AS a
         SET outcome = v.outcome, status = v.status, detail = v.detail, completed_at = v.at
         FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::timestamptz[])
           AS v(id, outcome, status, detail, at)
         WHERE a.id = v.id`,
      [
        batch.map((o) => o.id),
        batch.map((o) => o.outcome),
        batch.map((o) => o.status),
        batch.map((o) => o.detail ?? null),
        batch.map((o) => o.at.toISOString()),
      ],
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
    await this.outcomes.flush(5_000);
    await this.pool.end();
  }
}
