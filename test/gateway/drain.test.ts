// The gateway's SIGTERM drain, on gateway/main.ts as a process: /readyz fails at once while
// requests are still served; then event streams are told to reconnect (an `event: shutdown`
// frame with a short retry), a request in flight (a slow upload) still gets its answer, and the
// process exits 0 within its grace period.
import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { createCR, testNamespace, waitFor } from "../harness/cluster.ts";
import { gatewayWithTokens } from "../chaos/processes.ts";
import { ADMIN } from "./harness.ts";
import { openSse } from "./sse.ts";

const TOKEN = "drain-test-token";

describe("gateway graceful drain", () => {
  it("fails readiness, tells streams to reconnect, finishes requests in flight, exits 0", async (t) => {
    const ns = await testNamespace(t);
    await createCR(ns, "SandboxFleet", "fleet", { template: { image: "registry.example/sandbox:1" } });
    const gw = await gatewayWithTokens(
      t,
      { [TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } },
      { AGENTRY_SHUTDOWN_DELAY: "2s", AGENTRY_SHUTDOWN_GRACE: "15s" },
    );
    const stream = await openSse(`${gw.url}/v1/watch/namespaces/${ns}/workspaces`, TOKEN);
    t.after(() => stream.close());
    assert.equal(stream.status, 200);

    // A create whose body is still on its way when SIGTERM arrives.
    const connected = Promise.withResolvers<void>();
    let inFlight: () => void = () => undefined;
    const url = new URL(`${gw.url}/v1/namespaces/${ns}/workspaces`);
    const body = JSON.stringify({
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name: "late" },
      spec: { fleetRef: { name: "fleet" } },
    });
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          headers: {
            authorization: `Bearer ${TOKEN}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("error", reject);
      req.on("socket", (socket) => socket.once("connect", () => connected.resolve()));
      req.write(body.slice(0, 10));
      inFlight = () => req.end(body.slice(10));
    });
    await connected.promise;
    const exited = new Promise<number | null>((resolve) => gw.child.once("exit", (code) => resolve(code)));
    const t0 = Date.now();
    gw.child.kill("SIGTERM");

    const ready = await waitFor("/readyz to fail", async () => {
      const res = await fetch(`${gw.url}/readyz`);
      return res.status === 503 ? await res.json() : undefined;
    });
    assert.deepEqual(ready, { status: "unavailable", reason: "shutting down" });
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200, "still alive and serving");

    const shutdown = await waitFor("the stream told to reconnect", () =>
      stream.events().find((e) => e.event === "shutdown"),
    );
    assert.match(shutdown.data ?? "", /reconnect with Last-Event-ID/);
    await waitFor("the stream ended", () => stream.ended);

    inFlight();
    const created = await answer;
    assert.equal(created.status, 201, created.text);
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t0 < 15_000, "within the grace period");
  });
});
