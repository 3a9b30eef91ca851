// SandboxApp in-process: protocol details the integration test does not reach easily
// (chunked bodies over the limit, HEAD, internal errors kept private).
import assert from "node:assert/strict";
import { request } from "node:http";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { startSandboxApp, type TestSandbox } from "../../test/harness/sandboxapp.ts";
import { testTrust, type TestTrust } from "../../test/harness/tokens.ts";
import { waitFor } from "../../test/harness/process.ts";
import type { ExecResult } from "../../contracts/sandbox.ts";
import type { WorkspaceStore } from "./workspaces.ts";

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
  let port: number;
  let store: WorkspaceStore;
  let trust: TestTrust;
  let auth: Record<string, string>;
  let sandbox: TestSandbox;
  before(async () => {
    sandbox = await startSandboxApp({ maxJsonBytes: 1000 });
    ({ store, trust, port } = sandbox);
    auth = await trust.bearer("pod:team/sandbox-0");
    await store.create("w", null);
  });
  after(() => sandbox.stop());
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

  it("streams a command's output as JSON lines, ending with its exit", async () => {
    const res = await fetch(url("/workspaces/w/exec"), {
      method: "POST",
      headers: { accept: "application/x-ndjson", ...auth },
      body: JSON.stringify({ command: ["sh", "-c", "echo out; echo err >&2; exit 3"] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const records = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const exit = records.at(-1)!;
    assert.deepEqual(
      records.slice(0, -1).sort((a, b) => String(a.type).localeCompare(String(b.type))),
      [
        { type: "stderr", data: "err\n" },
        { type: "stdout", data: "out\n" },
      ],
    );
    assert.deepEqual(
      { ...exit, durationMs: 0 },
      { type: "exit", exitCode: 3, signal: null, timedOut: false, truncated: false, durationMs: 0 },
    );
  });

  it("runs in a cwd inside the workspace and refuses one outside it", async () => {
    const post = (body: unknown) =>
      fetch(url("/workspaces/w/exec"), { method: "POST", body: JSON.stringify(body), headers: auth });
    await store.create("other", null);
    const mk = (await (
      await post({ command: ["sh", "-c", "mkdir -p sub/dir && ln -s ../other up"] })
    ).json()) as ExecResult;
    assert.equal(mk.exitCode, 0, JSON.stringify(mk));
    const pwd = (await (await post({ command: ["pwd"], cwd: "sub/dir" })).json()) as ExecResult;
    assert.equal(pwd.stdout, `${store.dir("w")}/sub/dir\n`);
    // Outside the workspace: 400; missing or a file: 409 (the workspace's state is in the way).
    for (const [cwd, want] of [
      ["up", 400],
      ["../other", 400],
      ["/tmp", 400],
      ["sub/../..", 400],
      ["missing", 409],
      ["ok.txt", 409],
    ] as const) {
      if (cwd === "ok.txt") await store.writeFile("w", ["ok.txt"], Readable.from([Buffer.from("x")]), 10);
      const res = await post({ command: ["pwd"], cwd });
      assert.equal(res.status, want, `${cwd}: ${res.status}`);
    }
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

describe("SandboxApp: a call for a workspace it does not hold", () => {
  let sandbox: TestSandbox;
  before(async () => {
    sandbox = await startSandboxApp({ wakeWaitMs: 3000 });
  });
  after(() => sandbox.stop());
  const status = async () =>
    (await (
      await fetch(sandbox.url("/status"), { headers: await sandbox.trust.bearer("pod:team/sandbox-0") })
    ).json()) as { wakeRequests?: string[] };

  it("with the workspace's token: asks for a wake in /status and answers once the workspace comes", async () => {
    const auth = await sandbox.trust.bearer("workspace:team.late", ["files"]);
    const call = fetch(sandbox.url("/workspaces/team.late/dir"), { headers: auth });
    await waitFor("the wake request in /status", async () =>
      (await status()).wakeRequests?.includes("team.late"),
    );
    await sandbox.store.create("team.late", null);
    const res = await call;
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await status()).wakeRequests, undefined, "answered: no longer asked for");
  });

  it("past the wait: 503 with Retry-After", async () => {
    const auth = await sandbox.trust.bearer("workspace:team.gone", ["files"]);
    const res = await fetch(sandbox.url("/workspaces/team.gone/files/a.txt"), { headers: auth });
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get("retry-after")) > 0);
    assert.match(
      ((await res.json()) as { detail: string }).detail,
      /suspended for idleness it is being woken/,
    );
    assert.deepEqual((await status()).wakeRequests, ["team.gone"]);
  });

  it("with the pod's token (the operator's): 404 at once, no wake asked", async () => {
    const auth = await sandbox.trust.bearer("pod:team/sandbox-0");
    const res = await fetch(sandbox.url("/workspaces/team.other/dir"), { headers: auth });
    assert.equal(res.status, 404);
    assert.ok(!(await status()).wakeRequests?.includes("team.other"));
  });
});
