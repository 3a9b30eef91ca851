import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { describe, it } from "node:test";
import { AgentProbe, parseReadiness } from "./agentruntime.probe.ts";

describe("agent readiness probe", () => {
  it("keeps the agent's answer to a known, bounded shape", () => {
    assert.deepEqual(parseReadiness({ status: "error", reason: "no key" }), {
      status: "error",
      reason: "no key",
    });
    assert.deepEqual(parseReadiness({ status: "ready" }), { status: "ready" });
    assert.equal(parseReadiness({ status: "Error; rm -rf" }), undefined);
    assert.equal(parseReadiness({ status: 3 }), undefined);
    assert.equal(parseReadiness("error"), undefined);
    assert.equal(parseReadiness(null), undefined);
    const long = parseReadiness({ status: "error", reason: `a\u0000b\nc\u202e${"x".repeat(5000)}` });
    assert.equal(long?.reason?.length, 512);
    assert.match(long?.reason ?? "", /^a b c x+$/);
  });

  it("asks the pod's address, caches the answer briefly, and gives undefined when unreachable", async (t) => {
    let calls = 0;
    const server = createServer((req, res) => {
      calls++;
      assert.equal(req.url, "/readyz");
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "starting", reason: "loading" }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    t.after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const pod = (ip: string, uid = "u1") => ({
      metadata: { name: "a", namespace: "n", uid },
      status: { podIP: ip },
    });
    const probe = new AgentProbe(
      { addressOf: (p, port) => (p.status?.podIP ? `${p.status.podIP}:${port}` : undefined) },
      { ttlMs: 60_000, timeoutMs: 500 },
    );
    assert.deepEqual(await probe.readiness(pod("127.0.0.1"), port), {
      status: "starting",
      reason: "loading",
    });
    assert.deepEqual(await probe.readiness(pod("127.0.0.1"), port), {
      status: "starting",
      reason: "loading",
    });
    assert.equal(calls, 1, "cached");
    await probe.readiness(pod("127.0.0.1", "u2"), port);
    assert.equal(calls, 2, "a new pod is asked again");
    assert.equal(
      await probe.readiness({ metadata: { name: "a", namespace: "n" }, status: {} }, port),
      undefined,
    );
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const deadPort = (closed.address() as { port: number }).port;
    closed.close();
    assert.equal(await probe.readiness(pod("127.0.0.1", "u3"), deadPort), undefined);
  });
});
