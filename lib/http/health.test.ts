import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { healthBody, startHealthServer } from "./health.ts";

describe("health endpoints", () => {
  it("answer JSON: 200 {status: ok}, or 503 with the reason", async () => {
    let notReady: string | undefined = "caches not synced yet";
    const { server, port } = await startHealthServer(
      { host: "127.0.0.1", port: 0 },
      { registry: new Registry() },
      { healthy: () => undefined, ready: () => notReady },
    );
    try {
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        assert.equal(res.headers.get("content-type"), "application/json");
        return { status: res.status, body: await res.json() };
      };
      assert.deepEqual(await get("/healthz"), { status: 200, body: { status: "ok" } });
      assert.deepEqual(await get("/readyz"), {
        status: 503,
        body: { status: "unavailable", reason: "caches not synced yet" },
      });
      notReady = undefined;
      assert.deepEqual(await get("/readyz"), { status: 200, body: { status: "ok" } });
    } finally {
      server.close();
    }
  });

  it("builds the same body everywhere", () => {
    assert.deepEqual(healthBody(undefined), { status: "ok" });
    assert.deepEqual(healthBody("draining"), { status: "unavailable", reason: "draining" });
  });
});
