import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { KubeClient, TokenBucket } from "./client.ts";
import { KubeConfig, type KubeAccess } from "./kubeconfig.ts";

/** A kubeconfig pointing at the local test server with the given credentials. */
function kubeConfigFor(server: Server, user: Partial<KubeAccess>): KubeConfig {
  return new KubeConfig({
    server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tls: { rejectUnauthorized: false },
    ...user,
  });
}

describe("KubeClient.withImpersonation", () => {
  it("adds Impersonate-User and one Impersonate-Group per group; the base client adds none", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const kc = kubeConfigFor(server, { token: "gateway-token" });
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

describe("KubeClient connections", () => {
  it("reuses one keep-alive connection with an in-cluster token file, sending the file's token", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-client-"));
    const tokenFile = join(dir, "token");
    await writeFile(tokenFile, "sa-token");
    let connections = 0;
    const auth: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      auth.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    server.on("connection", () => connections++);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const kc = kubeConfigFor(server, { tokenFile });
    const client = new KubeClient(kc);
    try {
      for (let i = 0; i < 10; i++) await client.request("GET", "/api");
    } finally {
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
    assert.deepEqual(new Set(auth), new Set(["Bearer sa-token"]));
    // A connection per request would open 10; a kept-alive one opens one or two (the first
    // may not be back in the pool when the next request starts).
    assert.ok(connections <= 2, `${connections} connections for 10 requests`);
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
