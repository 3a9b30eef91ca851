import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, TokenBucket } from "./client.ts";

describe("KubeClient.withImpersonation", () => {
  it("adds Impersonate-User and one Impersonate-Group per group; the base client adds none", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: "c",
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: "u", token: "gateway-token" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const base = new KubeClient(kc);
    await base.withImpersonation({ user: "alice", groups: ["dev", "ops"] }).request("GET", "/api");
    await base.request("GET", "/api");
    server.closeAllConnections();
    server.close();
    assert.equal(seen[0]?.["impersonate-user"], "alice");
    assert.equal(seen[0]?.["impersonate-group"], "dev, ops");
    assert.equal(seen[0]?.authorization, "Bearer gateway-token");
    assert.equal(seen[1]?.["impersonate-user"], undefined);
  });
});

describe("TokenBucket.tryTake", () => {
  it("takes while tokens last, then reports the wait without taking", () => {
    let now = 0;
    const b = new TokenBucket(2, 2, () => now);
    assert.deepEqual([b.tryTake(), b.tryTake()], [0, 0]);
    assert.equal(b.tryTake(), 500);
    assert.equal(b.tryTake(), 500);
    now = 500;
    assert.equal(b.tryTake(), 0);
  });
});
