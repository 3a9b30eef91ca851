// The gateway's PostgreSQL: audit records of every write, idempotent retries, 503 with no
// cluster write when the database is down, and the strict start on unmigrated schemas.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { join } from "node:path";
import { kubectl, run, serviceUrl, testNamespace } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { createFleet, freshDatabase, startGateway, startGatewayProcess } from "./harness.ts";
import { migrate } from "../../gateway/store/migrations.ts";
import { createPool, PgStore } from "../../gateway/store/store.ts";

const workspace = (name: string, owner = "alice") => ({
  metadata: { name },
  spec: { fleetRef: { name: "fleet" }, ownerId: owner },
});

/** A pool of `size` on a fresh, migrated database of the suite's PostgreSQL; undefined (the test skipped) without one. */
async function migratedPool(t: TestContext, size: number) {
  const server = serviceUrl(t, "postgres");
  if (!server) return undefined;
  const pool = createPool(await freshDatabase(t, server), size);
  t.after(() => pool.end());
  await migrate(pool);
  return pool;
}

describe("gateway store (PostgreSQL)", () => {
  it("audits writes and never creates twice for a retried Idempotency-Key", async (t) => {
    const server = serviceUrl(t, "postgres");
    if (!server) return;
    const ns = await testNamespace(t);
    await createFleet(ns);
    const gw = await startGateway(t, { databaseUrl: await freshDatabase(t, server) });
    const base = `/v1/namespaces/${ns}/workspaces`;
    const headers = { "idempotency-key": "create-w1" };
    const first = await gw.call("POST", base, {
      body: workspace("w1"),
      headers: { ...headers, "x-request-id": "req-1" },
    });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const retry = await gw.call("POST", base, {
      body: workspace("w1"),
      headers: { ...headers, "x-request-id": "req-2" },
    });
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(retry.body, first.body);
    const other = await gw.call("POST", base, { body: workspace("w1", "bob"), headers });
    assert.equal(other.status, 422);
    assert.match(String(other.body.type), /idempotency-key-reused/);

    const uids = await kubectl(["get", "workspaces", "-n", ns, "-o", "jsonpath={.items[*].metadata.uid}"]);
    assert.equal(uids.stdout.split(" ").length, 1);
    await gw.auditWritten();
    const audit = await gw.pool.query<{
      request_id: string;
      verb: string;
      outcome: string;
      status: number;
      name: string;
    }>("SELECT request_id, verb, outcome, status, name FROM audit_log ORDER BY id");
    assert.deepEqual(audit.rows, [
      { request_id: "req-1", verb: "create", outcome: "succeeded", status: 201, name: "w1" },
    ]);

    // A failed write is audited as failed and does not burn the key.
    const conflict = await gw.call("POST", base, {
      body: workspace("w1"),
      headers: { "idempotency-key": "k2" },
    });
    assert.equal(conflict.status, 409);
    const rows = await gw.pool.query("SELECT 1 FROM idempotency_keys WHERE key = 'k2'");
    assert.equal(rows.rowCount, 0);
    await gw.auditWritten();
    const failed = await gw.pool.query("SELECT outcome, status FROM audit_log WHERE status = 409");
    assert.deepEqual(failed.rows, [{ outcome: "failed", status: 409 }]);
  });

  it("prunes audit records past their retention and forgets expired Idempotency-Keys", async (t) => {
    const pool = await migratedPool(t, 2);
    if (!pool) return;
    const store = new PgStore(pool, { auditRetentionMs: 86_400_000, idempotencyTtlMs: 3_600_000 });
    const entry = { actor: "alice", groups: [], verb: "create", kind: "Workspace", namespace: "ns" };
    const old = await store.beginAudit({ ...entry, requestId: "old", name: "a" });
    await store.beginAudit({ ...entry, requestId: "recent", name: "b" });
    await pool.query("UPDATE audit_log SET at = now() - interval '2 days' WHERE id = $1", [old]);
    const saved = { status: 201, body: { ok: true }, headers: {} };
    for (const key of ["expired", "stale", "fresh"]) {
      assert.deepEqual(await store.claimIdempotency("alice", key, "hash-1"), { state: "new" });
      await store.saveIdempotency("alice", key, saved);
    }
    await pool.query(
      "UPDATE idempotency_keys SET created_at = now() - interval '2 hours' WHERE key IN ('expired', 'stale')",
    );
    // Expired: another request may use the key (even before a prune); fresh: still guarded.
    assert.deepEqual(await store.claimIdempotency("alice", "expired", "hash-2"), { state: "new" });
    assert.deepEqual(await store.claimIdempotency("alice", "fresh", "hash-2"), { state: "mismatch" });
    assert.equal((await store.claimIdempotency("alice", "fresh", "hash-1")).state, "replay");

    assert.deepEqual(await store.prune(), { audit: 1, idempotency: 1 });
    const audit = await pool.query<{ request_id: string }>("SELECT request_id FROM audit_log");
    assert.deepEqual(audit.rows, [{ request_id: "recent" }]);
    const keys = await pool.query<{ key: string }>("SELECT key FROM idempotency_keys ORDER BY key");
    assert.deepEqual(keys.rows, [{ key: "expired" }, { key: "fresh" }]);
    assert.deepEqual(await store.prune(), { audit: 0, idempotency: 0 });

    // Retention 0 keeps audit records forever.
    await pool.query("UPDATE audit_log SET at = now() - interval '3650 days'");
    const forever = new PgStore(pool, { auditRetentionMs: 0, idempotencyTtlMs: 3_600_000 });
    assert.deepEqual(await forever.prune(), { audit: 0, idempotency: 0 });
  });

  it("gives writes made together one INSERT, each its own record; a row refused fails alone", async (t) => {
    const pool = await migratedPool(t, 4);
    if (!pool) return;
    let inserts = 0;
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    pool.query = ((...args: unknown[]) => {
      if (String(args[0]).includes("INSERT INTO audit_log")) inserts++;
      return query(...args);
    }) as typeof pool.query;
    const store = new PgStore(pool);
    const entry = (i: number) => ({
      requestId: `r-${i % 7}`, // ids repeat: told apart by the other fields
      actor: i === 53 ? "bad\u0000actor" : `user-${i % 3}`, // PostgreSQL refuses a NUL in text
      groups: [`g-${i}`],
      verb: i % 2 ? "patch" : "create",
      kind: "Workspace",
      namespace: "ns",
      name: `w-${i}`,
    });
    const begin = (from: number, n: number) =>
      Promise.allSettled(Array.from({ length: n }, (_, k) => store.beginAudit(entry(from + k))));
    const started = await begin(0, 40);
    assert.equal(inserts, 1, "forty writes of one turn share one INSERT");
    // A batch with a row the database refuses: tried row by row, only that write fails.
    started.push(...(await begin(40, 20)));
    const refused = started.flatMap((r, i) => (r.status === "rejected" ? [i] : []));
    assert.deepEqual(refused, [53]);
    assert.match(String((started[53] as PromiseRejectedResult).reason.message), /audit database/);
    const ids = started.map((r) => (r.status === "fulfilled" ? r.value : ""));
    assert.equal(new Set(ids.filter(Boolean)).size, 59);
    for (const [i, id] of ids.entries()) if (id) store.finishAudit(id, "succeeded", 200 + i);
    assert.equal(await store.flushAudits(10_000), true);
    const rows = await pool.query<{
      id: string;
      request_id: string;
      actor: string;
      groups: string[];
      verb: string;
      name: string;
      status: number;
    }>("SELECT id, request_id, actor, groups, verb, name, status FROM audit_log");
    assert.equal(rows.rowCount, 59);
    for (const row of rows.rows) {
      const i = ids.indexOf(row.id);
      const e = entry(i);
      assert.deepEqual(
        { ...row, id: undefined },
        {
          id: undefined,
          request_id: e.requestId,
          actor: e.actor,
          groups: e.groups,
          verb: e.verb,
          name: e.name,
          status: 200 + i,
        },
      );
    }
  });

  it("answers 503 and writes nothing to the cluster when the database is down", async (t) => {
    const ns = await testNamespace(t);
    await createFleet(ns);
    const gw = await startGateway(t); // embedded PGlite, served over a loopback socket
    const base = `/v1/namespaces/${ns}/workspaces`;
    assert.equal((await gw.call("POST", base, { body: workspace("before") })).status, 201);
    await gw.stopDatabase!();
    for (const [method, path, body] of [
      ["POST", base, workspace("after")],
      ["PATCH", `${base}/before`, { metadata: { labels: { a: "b" } } }],
      ["DELETE", `${base}/before`, undefined],
    ] as const) {
      const r = await gw.call(method, path, { body });
      assert.equal(r.status, 503, `${method}: ${JSON.stringify(r.body)}`);
      assert.match(r.headers.get("content-type") ?? "", /problem\+json/);
      assert.match(String(r.body.detail), /audit database is unavailable.*nothing was written/);
    }
    const names = await kubectl(["get", "workspaces", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
    assert.equal(names.stdout, "before");
    const labels = await kubectl([
      "get",
      "workspace",
      "before",
      "-n",
      ns,
      "-o",
      "jsonpath={.metadata.labels}",
    ]);
    assert.equal(labels.stdout, "");
    // Reads do not need the database.
    assert.equal((await gw.call("GET", base)).status, 200);
  });

  it("refuses to start on an unmigrated database and says what to run", async (t) => {
    const server = serviceUrl(t, "postgres");
    if (!server) return;
    const url = await freshDatabase(t, server);
    const env = { DATABASE_URL: url, AGENTRY_TOKEN_REVIEW: "false" };
    await assert.rejects(startGatewayProcess(t, env), /schema is not current.*gateway:migrate/);
    const migrate = join(repoRoot, "gateway", "migrate.ts");
    const first = await run(process.execPath, ["--import", "tsx", migrate, url]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied: 0001/);
    const again = await run(process.execPath, ["--import", "tsx", migrate, url]);
    assert.match(again.stdout, /nothing to apply/);
    const gw = await startGatewayProcess(t, env);
    assert.equal((await gw.call("GET", "/healthz", { token: null })).status, 200);
    const down = await startGatewayProcess(t, { DATABASE_URL: "postgres://postgres@127.0.0.1:1/x" }).then(
      () => "started",
      (e: Error) => e.message,
    );
    assert.match(down, /unreachable/);
  });
});
