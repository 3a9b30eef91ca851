import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { describe, it } from "node:test";
import { AgentProbe, parseReadiness } from "./probe.ts";

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
      assert.equal(req.headers.authorization, "Bearer token-for-pod:n/a-status");
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "starting", reason: "loading" }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    t.after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const pod = (ip: string, uid = "u1") => ({
      metadata: { name: "a", namespace: "n", uid, ownerReferences: [owner] },
      status: { podIP: ip },
    });
    const probe = newProbe({ ttlMs: 60_000, timeoutMs: 500 });
    assert.deepEqual(await probe.readiness(pod("127.0.0.1"), AGENT_UID, port), {
      status: "starting",
      reason: "loading",
    });
    assert.deepEqual(await probe.readiness(pod("127.0.0.1"), AGENT_UID, port), {
      status: "starting",
      reason: "loading",
    });
    assert.equal(calls, 1, "cached");
    await probe.readiness(pod("127.0.0.1", "u2"), AGENT_UID, port);
    assert.equal(calls, 2, "a new pod is asked again");
    assert.equal(
      await probe.readiness(
        { metadata: { name: "a", namespace: "n", ownerReferences: [owner] }, status: {} },
        AGENT_UID,
        port,
      ),
      undefined,
    );
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const deadPort = (closed.address() as { port: number }).port;
    closed.close();
    assert.equal(await probe.readiness(pod("127.0.0.1", "u3"), AGENT_UID, deadPort), undefined);
  });

  it("keeps an answer for ttlMs by the injected clock, then asks again", async () => {
    let calls = 0;
    let at = Date.parse("2026-01-01T00:00:00Z");
    const answers = ["starting", "error"];
    const probe = newProbe({ ttlMs: 2000, now: () => new Date(at) }, () => {
      const status = answers[Math.min(calls++, answers.length - 1)];
      return Promise.resolve(Response.json({ status }, { status: 503 }));
    });
    const pod = {
      metadata: { name: "a", namespace: "n", uid: "p", ownerReferences: [owner] },
      status: { podIP: "127.0.0.1" },
    };
    assert.deepEqual(await probe.readiness(pod, AGENT_UID, 1), { status: "starting" });
    at += 1999;
    assert.deepEqual(await probe.readiness(pod, AGENT_UID, 1), { status: "starting" }, "still fresh");
    assert.equal(calls, 1);
    at += 1;
    assert.deepEqual(await probe.readiness(pod, AGENT_UID, 1), { status: "error" }, "expired: asked again");
    assert.equal(calls, 2);
  });

  it("never asks (nor sends a token to) a pod its AgentRuntime does not control", async (t) => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      res.end("{}");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    t.after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const probe = newProbe();
    const foreign = [[], [{ ...owner, uid: "other" }], [{ ...owner, controller: false }]];
    for (const ownerReferences of foreign)
      assert.equal(
        await probe.readiness(
          {
            metadata: { name: "a", namespace: "n", uid: "p", ownerReferences },
            status: { podIP: "127.0.0.1" },
          },
          AGENT_UID,
          port,
        ),
        undefined,
      );
    assert.equal(calls, 0);
  });

  it("does not follow a redirect and reads at most 16 KiB", async (t) => {
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url ?? "");
      if (req.url === "/readyz" && req.headers["x-port"] === undefined) {
        res.writeHead(307, { location: `http://127.0.0.1:${port}/elsewhere` });
        return res.end();
      }
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "error", reason: "x".repeat(100_000) }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    t.after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const pod = {
      metadata: { name: "a", namespace: "n", uid: "p", ownerReferences: [owner] },
      status: { podIP: "127.0.0.1" },
    };
    assert.equal(await newProbe().readiness(pod, AGENT_UID, port), undefined);
    assert.deepEqual(hits, ["/readyz"], "the redirect was not followed");
    const big = newProbe({}, (url, init) =>
      fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), "x-port": "1" } }),
    );
    assert.equal(
      await big.readiness({ ...pod, metadata: { ...pod.metadata, uid: "q" } }, AGENT_UID, port),
      undefined,
    );
  });
});

const AGENT_UID = "agent-uid";
const owner = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  name: "a",
  uid: AGENT_UID,
  controller: true,
};

function newProbe(options: { ttlMs?: number; timeoutMs?: number; now?: () => Date } = {}, f?: typeof fetch) {
  return new AgentProbe(
    { addressOf: (p, port) => (p.status?.podIP ? `${p.status.podIP}:${port}` : undefined) },
    { token: (aud, scope) => Promise.resolve(`token-for-${aud}-${scope.join(",")}`) },
    { ...options, ...(f ? { fetch: f } : {}) },
  );
}
