// Issue 12, item 4: the dependencies of the write path failing under running processes.
// - A slow admission webhook: the apiserver waits timeoutSeconds, then follows the
//   configured failurePolicy (Fail: refused, nothing written; Ignore: written unchecked),
//   and the webhook is in force again as soon as it answers in time; no restart.
// - PostgreSQL (the gateway's audit log) stopped and started again: writes answer 503
//   and write nothing while it is down, /readyz says why, and the same gateway process
//   serves writes again once it is back; every stored object has its audit record.
// - Redis (rate limits and event fan-out) killed and started again, empty: REST keeps
//   working (rate limits let requests through and say so in the log, throttled), a new
//   watch answers 503 naming Redis, and a watch that was open before the crash receives
//   every change made during the outage once Redis is back, none twice; no restart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { kubectl, run, testNamespace, waitFor, type RunResult } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { freePort } from "../harness/process.ts";
import { startPostgres, startRedis, type ServiceServer } from "../harness/services.ts";
import { startWebhook, webhookId, webhookRulesInForce } from "../harness/webhook.ts";
import { ADMIN, createFleet } from "../gateway/harness.ts";
import { objectName, openSse } from "../gateway/sse.ts";
import { cutProxy } from "./cut-proxy.ts";
import { alive, gatewayWithTokens } from "./processes.ts";
import { join } from "node:path";

const API = "agentry.dev/v1alpha1";
const TOKEN = "chaos-dependencies-token";
const tokens = { [TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } };

const workspace = (name: string, fleet = "fleet") => ({
  apiVersion: API,
  kind: "Workspace",
  metadata: { name },
  spec: { fleetRef: { name: fleet } },
});

const apply = (namespace: string, obj: object): Promise<RunResult> =>
  kubectl(["apply", "-n", namespace, "-f", "-"], JSON.stringify(obj));

const exists = async (namespace: string, name: string): Promise<boolean> =>
  (
    await kubectl(["get", "workspace", name, "-n", namespace, "--ignore-not-found", "-o", "name"])
  ).stdout.trim() !== "";

/** A private server for an outage test; missing binaries skip the test (CI=true fails instead). */
async function server(
  t: { after: (fn: () => Promise<void>) => void; skip: (why: string) => void },
  what: "postgres" | "redis",
): Promise<ServiceServer | undefined> {
  const s = what === "postgres" ? await startPostgres() : await startRedis();
  if (!s) {
    if (process.env.CI === "true") throw new Error(`CI=true: the ${what} server binaries are required`);
    t.skip(`no ${what} server installed`);
    return undefined;
  }
  t.after(() => s.stop(false));
  return s;
}

describe("admission webhook slower than its timeout", () => {
  for (const policy of ["Fail", "Ignore"] as const) {
    it(`${policy}: waits timeoutSeconds, then ${policy === "Fail" ? "refuses" : "admits unchecked"}; in force again once fast`, async (t) => {
      const ident = webhookId();
      const ns = await testNamespace(t, ident.labels);
      const TIMEOUT_S = 2;
      // Start the webhook behind a proxy: the apiserver calls the proxy's port.
      const port = await freePort();
      const proxy = await cutProxy(t, port);
      const hook = await startWebhook(t, ident, {
        namespace: ns,
        port,
        urlPort: proxy.port,
        args: [`--failure-policy=${policy}`, `--timeout=${TIMEOUT_S}s`],
      });
      assert.ok(hook.port > 0);
      // In time: the webhook's rules apply (a Workspace naming a missing fleet is refused).
      await webhookRulesInForce(ns, "probe");

      proxy.delayMs = 20_000;
      const t0 = Date.now();
      const slow = await apply(ns, workspace("during", "no-such-fleet"));
      const waited = Date.now() - t0;
      t.diagnostic(`write with a slow webhook answered after ${waited} ms (${policy})`);
      // The apiserver gives up after timeoutSeconds per webhook call, not after the proxy's delay.
      assert.ok(waited >= TIMEOUT_S * 1000 - 200, `answered after ${waited} ms, before the timeout`);
      assert.ok(waited < 15_000, `answered after ${waited} ms: waited for the slow webhook`);
      if (policy === "Fail") {
        assert.notEqual(slow.code, 0, "the write must be refused");
        assert.match(slow.stderr, /failed calling webhook "(default|validate)\.agentry\.dev"/);
        assert.match(slow.stderr, /deadline exceeded|timeout|Timeout/);
        assert.equal(await exists(ns, "during"), false, "nothing was written");
      } else {
        assert.equal(slow.code, 0, `Ignore admits when the webhook is too slow: ${slow.stderr}`);
        assert.equal(await exists(ns, "during"), true);
      }

      // Fast again: the same webhook process checks writes again, no restart.
      proxy.delayMs = 0;
      await webhookRulesInForce(ns, "after");
      assert.equal(await exists(ns, "after"), false);
    });
  }
});

describe("gateway: PostgreSQL stops and comes back", () => {
  it("answers 503 and writes nothing while it is down, then serves writes again without a restart", async (t) => {
    const db = await server(t, "postgres");
    if (!db) return;
    const migrate = await run(process.execPath, [
      "--import",
      "tsx",
      join(repoRoot, "gateway", "migrate.ts"),
      db.url,
    ]);
    assert.equal(migrate.code, 0, migrate.stderr);
    const ns = await testNamespace(t);
    await createFleet(ns);
    const gw = await gatewayWithTokens(t, tokens, { DATABASE_URL: db.url });
    const base = `/v1/namespaces/${ns}/workspaces`;
    const post = (name: string) => gw.call("POST", base, { token: TOKEN, body: workspace(name) });
    assert.equal((await post("before")).status, 201);

    await db.halt();
    await waitFor("/readyz to report the database", async () => {
      const r = await fetch(`${gw.url}/readyz`);
      return r.status === 503 && /audit database is unreachable/.test(await r.text());
    });
    for (const name of ["down-1", "down-2"]) {
      const r = await post(name);
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.match(r.headers.get("content-type") ?? "", /problem\+json/);
      assert.match(String(r.body.detail), /audit database is unavailable.*nothing was written/);
      assert.equal(r.headers.get("retry-after"), "5");
      assert.equal(await exists(ns, name), false, `${name} must not be written`);
    }
    // Reads do not need the database.
    assert.equal((await gw.call("GET", base, { token: TOKEN })).status, 200);

    const t0 = Date.now();
    await db.resume();
    await waitFor("/readyz to be ok again", async () => (await fetch(`${gw.url}/readyz`)).status === 200, {
      timeoutMs: 30_000,
    });
    const created = await waitFor(
      "a write to succeed again",
      async () => (await post("after")).status === 201,
      {
        timeoutMs: 30_000,
      },
    );
    t.diagnostic(`writes served again ${Date.now() - t0} ms after PostgreSQL was started`);
    assert.ok(created);
    assert.ok(alive(gw.child), "the gateway kept running");

    // Every stored Workspace has its succeeded audit record; the refused ones have none.
    const names = (
      await kubectl(["get", "workspaces", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"])
    ).stdout
      .split(" ")
      .sort();
    assert.deepEqual(names, ["after", "before"]);
    // Outcomes are written off the response path: wait until none of these is pending.
    const audit = await waitFor("the audit records' outcomes", async () => {
      const c = new pg.Client({ connectionString: db.url });
      c.on("error", () => undefined);
      await c.connect();
      try {
        const r = await c.query<{ name: string; outcome: string }>(
          "SELECT name, outcome FROM audit_log WHERE namespace = $1 AND verb = 'create' ORDER BY name",
          [ns],
        );
        return r.rows.some((row) => row.outcome === "pending") ? undefined : r;
      } finally {
        await c.end().catch(() => undefined);
      }
    });
    assert.deepEqual(audit.rows, [
      { name: "after", outcome: "succeeded" },
      { name: "before", outcome: "succeeded" },
    ]);
  });
});

describe("gateway: Redis crashes and comes back empty", () => {
  it("keeps REST working, refuses new watches with 503, and open watches miss nothing", async (t) => {
    const redis = await server(t, "redis");
    if (!redis) return;
    const ns = await testNamespace(t);
    await createFleet(ns);
    const gw = await gatewayWithTokens(t, tokens, { REDIS_URL: redis.url, AGENTRY_SSE_HEARTBEAT: "1" });
    const base = `/v1/namespaces/${ns}/workspaces`;
    const watchUrl = `${gw.url}/v1/watch/namespaces/${ns}/workspaces`;
    const post = (name: string) => gw.call("POST", base, { token: TOKEN, body: workspace(name) });
    const sse = await openSse(watchUrl, TOKEN);
    t.after(() => sse.close());
    assert.equal(sse.status, 200);
    for (const name of ["w0", "w1"]) assert.equal((await post(name)).status, 201);
    await waitFor("w0 and w1 on the stream", () =>
      ["w0", "w1"].every((n) => sse.events().some((e) => objectName(e) === n)),
    );

    await redis.halt(); // SIGKILL: a crash, and it comes back with no data
    const refused = await waitFor("a new watch to be refused", async () => {
      const r = await fetch(watchUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (r.status !== 503) {
        await r.body?.cancel();
        return undefined;
      }
      return { type: r.headers.get("content-type"), body: (await r.json()) as Record<string, unknown> };
    });
    assert.match(refused.type ?? "", /problem\+json/);
    assert.equal(refused.body.cause, "redis");
    assert.match(String(refused.body.detail), /cannot reach Redis/);
    // REST goes on: rate limits let requests through while Redis is away.
    for (const name of ["w2", "w3", "w4"]) assert.equal((await post(name)).status, 201, name);
    const patched = await gw.call("PATCH", `${base}/w0`, {
      token: TOKEN,
      body: { metadata: { labels: { during: "outage" } } },
      headers: { "content-type": "application/merge-patch+json" },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal((await gw.call("DELETE", `${base}/w1`, { token: TOKEN })).status, 200);
    assert.equal(
      (await fetch(`${gw.url}/readyz`)).status,
      200,
      "REST is still served: the gateway stays ready",
    );

    await redis.resume();
    assert.equal((await post("w5")).status, 201);
    const seen = (name: string, type: string, check: (o: Record<string, unknown>) => boolean = () => true) =>
      sse
        .events()
        .some(
          (e) =>
            e.event === type &&
            objectName(e) === name &&
            check(JSON.parse(e.data ?? "{}") as Record<string, unknown>),
        );
    await waitFor(
      "every change made during the outage on the stream opened before it",
      () =>
        ["w2", "w3", "w4", "w5"].every((n) => seen(n, "ADDED")) &&
        seen(
          "w0",
          "MODIFIED",
          (o) => (o.metadata as { labels?: Record<string, string> }).labels?.during === "outage",
        ) &&
        seen("w1", "DELETED"),
      { timeoutMs: 30_000 },
    );
    const ids = sse.events().map((e) => e.id ?? "");
    assert.equal(new Set(ids).size, ids.length, "no event twice");
    const added = sse
      .events()
      .filter((e) => e.event === "ADDED")
      .map(objectName);
    assert.equal(new Set(added).size, added.length, `no object ADDED twice: ${added.join(",")}`);

    // New watches work again; the rate limiter is back in Redis.
    const again = await waitFor("a new watch to be accepted", async () => {
      const s = await openSse(watchUrl, TOKEN);
      if (s.status === 200) return s;
      s.close();
      return undefined;
    });
    again.close();
    const client = new Redis(redis.url);
    await waitFor("rate-limit buckets in Redis again", async () => {
      await gw.call("GET", base, { token: TOKEN });
      return (await client.keys("agentry:gateway:rate:*")).length > 0;
    }).finally(() => client.disconnect());
    assert.ok(alive(gw.child), "the gateway kept running");
    const warnings = gw.logs.filter((l) => l.includes("rate limit check failed"));
    assert.ok(warnings.length >= 1 && warnings.length <= 3, `rate-limit warnings: ${warnings.length}`);
  });
});
