// SandboxApp in-process: protocol details the integration test does not reach easily
// (chunked bodies over the limit, HEAD, internal errors kept private).
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TokenVerifier } from "../../lib/tokens.ts";
import { testTrust, type TestTrust } from "../../test/harness/tokens.ts";
import { ExecPool } from "./exec.ts";
import { LoadSampler } from "./load.ts";
import { SandboxApp } from "./server.ts";
import { WorkspaceStore } from "./workspaces.ts";

const quiet = { debug: () => undefined, info: () => undefined, error: () => undefined };

/** Sends a body in chunks without Content-Length (Transfer-Encoding: chunked). */
function chunked(
  port: number,
  method: string,
  path: string,
  chunks: Buffer[],
  headers: Record<string, string>,
) {
  return new Promise<{ status: number; text: string; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(parts).toString(),
            headers: res.headers,
          }),
        );
      });
      req.on("error", reject);
      for (const c of chunks) req.write(c);
      req.end();
    },
  );
}

describe("SandboxApp", () => {
  let root: string;
  let server: Server;
  let port: number;
  let store: WorkspaceStore;
  let trust: TestTrust;
  let auth: Record<string, string>;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "agentry-app-"));
    trust = await testTrust();
    auth = await trust.bearer("pod:team/sandbox-0");
    store = await WorkspaceStore.open(join(root, "ws"), 4);
    const app = new SandboxApp({
      store,
      pool: new ExecPool(2),
      load: new LoadSampler({ intervalMs: 1000 }),
      log: quiet,
      verifier: new TokenVerifier({ dir: trust.dir }),
      pod: { namespace: "team", name: "sandbox-0" },
      allowLoadOverride: false,
      maxExecSeconds: 5,
      maxOutputBytes: 1000,
      maxFileBytes: 1000,
      maxJsonBytes: 1000,
    });
    server = createServer(app.handle);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
    await store.create("w", null);
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await rm(root, { recursive: true, force: true });
    await trust.remove();
  });
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;

  it("answers 413 to chunked uploads and JSON bodies over the limit", async () => {
    const file = await chunked(
      port,
      "PUT",
      "/workspaces/w/files/big",
      [Buffer.alloc(800), Buffer.alloc(800)],
      auth,
    );
    assert.equal(file.status, 413, file.text);
    assert.equal(file.headers["content-type"], "application/problem+json");
    const json = await chunked(
      port,
      "POST",
      "/workspaces/w/exec",
      [Buffer.from('{"command":["echo","'), Buffer.alloc(2000, "x"), Buffer.from('"]}')],
      auth,
    );
    assert.equal(json.status, 413, json.text);
    assert.equal((await fetch(url("/workspaces/w/files/big"), { headers: auth })).status, 404);
  });

  it("accepts a chunked upload within the limit", async () => {
    const res = await chunked(
      port,
      "PUT",
      "/workspaces/w/files/ok",
      [Buffer.from("ab"), Buffer.from("cd")],
      auth,
    );
    assert.equal(res.status, 201);
    assert.equal(await (await fetch(url("/workspaces/w/files/ok"), { headers: auth })).text(), "abcd");
  });

  it("answers HEAD like GET without a body", async () => {
    const res = await fetch(url("/workspaces/w/files/ok"), { method: "HEAD", headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "4");
    assert.equal((await fetch(url("/healthz"), { method: "HEAD" })).status, 200);
  });

  it("keeps internal errors private: a generic 500 problem", async () => {
    const original = store.list.bind(store);
    store.list = () => {
      throw new Error("secret internal detail /etc/shadow");
    };
    try {
      const res = await fetch(url("/workspaces"), { headers: auth });
      assert.equal(res.status, 500);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const text = await res.text();
      assert.doesNotMatch(text, /secret|shadow|at /);
      assert.equal(JSON.parse(text).title, "Internal Server Error");
    } finally {
      store.list = original;
    }
  });

  it("serves no load override route unless enabled", async () => {
    assert.equal((await fetch(url("/debug/load"), { method: "PUT", body: "{}", headers: auth })).status, 404);
  });

  it("refuses bad percent-encoding in workspace ids", async () => {
    assert.equal((await fetch(url("/workspaces/%zz"), { headers: auth })).status, 400);
  });

  it("answers 401 without a valid token and 403 for another audience or scope, as problems", async () => {
    const other = await testTrust();
    const cases: [string, string, Record<string, string>, number, RegExp][] = [
      ["GET", "/workspaces", {}, 401, /missing bearer token/],
      ["GET", "/status", { authorization: "Bearer not.a.token" }, 401, /malformed|invalid/],
      ["GET", "/status", await other.bearer("pod:team/sandbox-0"), 401, /unknown key/],
      ["POST", "/drain", await trust.bearer("pod:team/sandbox-1"), 403, /token is for pod:team\/sandbox-1/],
      [
        "GET",
        "/workspaces/w/files/ok",
        await trust.bearer("workspace:other"),
        403,
        /token is for workspace:other/,
      ],
      [
        "POST",
        "/workspaces/w/exec",
        await trust.bearer("workspace:w", ["files"]),
        403,
        /does not allow exec/,
      ],
      ["PUT", "/workspaces/x", await trust.bearer("workspace:x"), 403, /not for this pod/],
    ];
    for (const [method, path, headers, status, detail] of cases) {
      const res = await fetch(url(path), { method, headers });
      assert.equal(res.status, status, `${method} ${path}`);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="agentry-sandbox"/);
      assert.match((JSON.parse(await res.text()) as { detail: string }).detail, detail);
    }
    await other.remove();
  });

  it("opens a workspace's files to a token for that workspace, and the probes to anyone", async () => {
    const ws = await trust.bearer("workspace:w", ["files"]);
    assert.equal(await (await fetch(url("/workspaces/w/files/ok"), { headers: ws })).text(), "abcd");
    for (const probe of ["/healthz", "/readyz"]) assert.equal((await fetch(url(probe))).status, 200);
  });
});
