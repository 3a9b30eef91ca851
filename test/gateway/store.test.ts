// The gateway's PostgreSQL: audit records of every write, idempotent retries, 503 with no
// cluster write when the database is down, and the strict start on unmigrated schemas.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { join } from "node:path";
import { kubectl, run, serviceUrl, testNamespace } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { createFleet, freshDatabase, startGateway, startGatewayProcess } from "./harness.ts";

const workspace = (name: string, owner = "alice") => ({
  metadata: { name },
  spec: { fleetRef: { name: "fleet" }, ownerId: owner },
});

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
    const failed = await gw.pool.query("SELECT outcome, status FROM audit_log WHERE status = 409");
    assert.deepEqual(failed.rows, [{ outcome: "failed", status: 409 }]);
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
