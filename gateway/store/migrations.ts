// Schema migrations: numbered SQL files in migrations/, applied in order, each in its own
// transaction, recorded in schema_migrations. Applying is idempotent and serialised by an
// advisory lock, so a rerun (or two migrate Jobs at once) is safe.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Pool } from "pg";
import { errorMessage } from "../../lib/log.ts";

const DIR = join(import.meta.dirname, "migrations");
const LOCK_ID = 7_202_611; // advisory lock key of agentry gateway migrations

export interface Migration {
  version: string;
  sql: string;
}

export async function migrationFiles(dir = DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  return Promise.all(
    names.map(async (f) => ({ version: f.replace(/\.sql$/, ""), sql: await readFile(join(dir, f), "utf8") })),
  );
}

async function applied(pool: Pool): Promise<Set<string>> {
  const exists = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists.rows[0]?.t) return new Set();
  const rows = await pool.query<{ version: string }>("SELECT version FROM schema_migrations");
  return new Set(rows.rows.map((r) => r.version));
}

/** Versions not applied yet (empty when the schema is current). */
export async function pendingMigrations(pool: Pool, dir = DIR): Promise<string[]> {
  const done = await applied(pool);
  return (await migrationFiles(dir)).map((m) => m.version).filter((v) => !done.has(v));
}

/** Applies what is pending; returns the versions applied now. */
export async function migrate(pool: Pool, dir = DIR): Promise<string[]> {
  const client = await pool.connect();
  const now: string[] = [];
  try {
    await client.query("SELECT pg_advisory_lock($1)", [LOCK_ID]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = new Set(
      (await client.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map(
        (r) => r.version,
      ),
    );
    for (const m of await migrationFiles(dir)) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [m.version]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${m.version} failed: ${errorMessage(err)}`, { cause: err });
      }
      now.push(m.version);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [LOCK_ID]).catch(() => undefined);
    client.release();
  }
  return now;
}
