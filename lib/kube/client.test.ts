import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
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

describe("KubeClient requests", () => {
  /** A server whose answers the test writes; `client` talks to it under a path prefix. */
  async function withServer(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    fn: (client: KubeClient) => Promise<void>,
  ): Promise<void> {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const kc = new KubeConfig({
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix/`,
      tls: { rejectUnauthorized: false },
    });
    try {
      await fn(new KubeClient(kc, { timeoutMs: 300 }));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }

  it("sends the path under the server's prefix with the query encoded, and parses the answer", async () => {
    const urls: string[] = [];
    await withServer(
      (req, res) => {
        urls.push(req.url ?? "");
        res.writeHead(200, { "content-type": "application/json" }).end('{"kind":"Status","ok":1}');
      },
      async (client) => {
        const got = await client.request("GET", "/api/v1/pods", {
          query: { labelSelector: "a=b,c in (d e)", limit: 5, continue: undefined },
        });
        assert.deepEqual(got, { kind: "Status", ok: 1 });
        await client.request("GET", "/api");
      },
    );
    assert.deepEqual(urls, [
      "/prefix/api/v1/pods?labelSelector=a%3Db%2Cc+in+%28d+e%29&limit=5",
      "/prefix/api",
    ]);
  });

  it("gives up on an apiserver that does not answer in time, and says so", async () => {
    await withServer(
      () => undefined,
      async (client) => {
        const t0 = performance.now();
        await assert.rejects(client.request("GET", "/api"), /GET \/api: no answer within 0.3s/);
        assert.ok(performance.now() - t0 < 5_000);
      },
    );
  });

  it("gives up on an answer that stops half-way, and on one cut off", async () => {
    await withServer(
      (req, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
        res.write('{"half":');
        if (req.url?.endsWith("cut")) res.destroy();
      },
      async (client) => {
        await assert.rejects(client.request("GET", "/slow"), /no answer within 0.3s/);
        await assert.rejects(client.request("GET", "/cut"), /GET \/cut: /);
      },
    );
  });

  it("a caller's signal ends a request without the timeout's help", async () => {
    await withServer(
      () => undefined,
      async (client) => {
        const controller = new AbortController();
        const pending = client.request("GET", "/api", { signal: controller.signal });
        setTimeout(() => controller.abort(), 50);
        await assert.rejects(pending, (err: Error) => !/no answer within/.test(err.message));
      },
    );
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
