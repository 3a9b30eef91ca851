// The agent's HTTP API in-process: readiness states, task errors and the workspace
// passthrough to a scripted sandbox on loopback.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { startFakeServer, type FakeAnswer } from "../../test/harness/fakehttp.ts";
import { freePort, waitFor } from "../../test/harness/process.ts";
import { testTrust, type TestTrust } from "../../test/harness/tokens.ts";
import { loadAgentConfig, type AgentConfig } from "./config.ts";
import { AgentApp } from "./server.ts";

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

// Every agent here is AgentRuntime ns/agent in pod ns/agent-pod, trusting a key of the test's.
let trust: TestTrust;
/** The authorization header of a token for the agent allowing everything. */
let auth: Record<string, string>;
before(async () => {
  trust = await testTrust();
  auth = await trust.bearer("agent:ns/agent");
});
after(() => trust.remove());

async function serve(env: Record<string, string>): Promise<{ app: AgentApp; url: string }> {
  const cfg = loadAgentConfig([], {
    AGENTRY_AGENT_NAME: "agent",
    AGENTRY_NAMESPACE: "ns",
    AGENTRY_POD_NAME: "agent-pod",
    AGENTRY_POD_NAMESPACE: "ns",
    AGENTRY_TRUST_DIR: trust.dir,
    ...env,
  }) as AgentConfig;
  const app = new AgentApp(cfg, silentLogger());
  const server = createServer(app.handle);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { app, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A request with the agent's token unless `init.headers` says otherwise. */
async function call(url: string, init?: RequestInit) {
  const res = await fetch(url, { ...init, headers: init?.headers ?? auth });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    body: text ? JSON.parse(text) : undefined,
  };
}
const post = (url: string, body: unknown, headers: Record<string, string> = auth) =>
  call(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("agent API: readiness and tasks", () => {
  it("bad model settings: healthy, not ready with the reason, tasks refused with it", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "openai", AGENTRY_MODEL: "gpt" });
    assert.equal((await call(`${url}/healthz`)).status, 200);
    const ready = await call(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.status, "error");
    assert.match(ready.body.reason, /needs an API key: set spec.model.credentialsSecretRef/);
    const task = await post(`${url}/v1/tasks`, { input: "x" });
    assert.equal(task.status, 503);
    assert.equal(task.type, "application/problem+json");
    assert.match(task.body.detail, /not ready: provider openai needs an API key/);
  });

  const badBodies: [string, unknown, RegExp][] = [
    ["no input", {}, /input: /],
    ["input not a string", { input: 3 }, /input: /],
    ["timeout too long", { input: "x", timeoutSeconds: 999999 }, /timeoutSeconds/],
  ];
  for (const [name, body, detail] of badBodies)
    it(`task body: ${name} is a 400 naming the field`, async () => {
      const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo" });
      const res = await post(`${url}/v1/tasks`, body);
      assert.equal(res.status, 400);
      assert.match(res.body.detail, detail);
    });

  it("a model slower than timeoutSeconds is a 504", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo", AGENTRY_ECHO_DELAY: "3s" });
    const res = await post(`${url}/v1/tasks`, { input: "x", timeoutSeconds: 0.2 });
    assert.equal(res.status, 504);
    assert.match(res.body.detail, /did not answer within 0.2 s/);
  });

  it("unknown routes and methods are problems", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo" });
    assert.equal((await call(`${url}/nope`)).status, 404);
    assert.equal((await call(`${url}/v1/tasks`, { method: "PUT", headers: auth })).status, 405);
  });
});

describe("agent API: workspace passthrough", () => {
  it("without a workspace: 409 saying how to configure one", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo" });
    const res = await post(`${url}/v1/workspace/exec`, { command: ["ls"] });
    assert.equal(res.status, 409);
    assert.match(res.body.detail, /set spec.workspaceRef/);
  });

  it("starting until the sandbox holds the workspace; then exec and files go through", async (t) => {
    let exists = false;
    const sandbox = await startFakeServer((req): FakeAnswer => {
      if (req.method === "GET" && req.path === "/workspaces/ns.w")
        return exists
          ? { body: { id: "ns.w", ownerId: null, createdAt: "now" } }
          : { status: 404, body: { detail: "no" } };
      if (req.path === "/workspaces/ns.w/exec")
        return {
          body: {
            exitCode: 0,
            signal: null,
            stdout: "hi\n",
            stderr: "",
            timedOut: false,
            truncated: false,
            durationMs: 3,
          },
        };
      if (req.method === "PUT" && req.path.startsWith("/workspaces/ns.w/files/")) return { status: 201 };
      if (req.method === "GET" && req.path === "/workspaces/ns.w/files/a/b.txt") return { body: "content" };
      return {
        status: 404,
        body: { type: "about:blank", title: "Not Found", status: 404, detail: "file missing" },
      };
    });
    t.after(() => sandbox.close());
    const { app, url } = await serve({
      AGENTRY_MODEL_PROVIDER: "echo",
      AGENTRY_WORKSPACE: "w",
      AGENTRY_WORKSPACE_URL: `${sandbox.url}/workspaces/ns.w`,
    });
    assert.equal(await app.checkWorkspace(), false);
    const starting = await call(`${url}/readyz`);
    assert.equal(starting.status, 503);
    assert.deepEqual(starting.body.status, "starting");
    assert.match(starting.body.reason, /waiting for workspace w on its sandbox/);
    exists = true;
    assert.equal(await app.checkWorkspace(), true);
    assert.equal((await call(`${url}/readyz`)).status, 200);

    const exec = await post(`${url}/v1/workspace/exec`, { command: ["echo", "hi"], timeoutSeconds: 5 });
    assert.equal(exec.status, 200);
    assert.equal(exec.body.stdout, "hi\n");
    assert.deepEqual(JSON.parse(sandbox.requests.at(-1)!.body), {
      command: ["echo", "hi"],
      timeoutSeconds: 5,
    });

    const put = await call(`${url}/v1/workspace/files/a/b%20c.txt`, { method: "POST", body: "data!" });
    assert.equal(put.status, 201);
    assert.deepEqual(put.body, { path: "a/b c.txt", bytes: 5, created: true });
    assert.equal(sandbox.requests.at(-1)!.path, "/workspaces/ns.w/files/a/b%20c.txt");
    assert.equal(sandbox.requests.at(-1)!.body, "data!");

    const got = await fetch(`${url}/v1/workspace/files/a/b.txt`, { headers: auth });
    assert.equal(await got.text(), "content");
    const missing = await call(`${url}/v1/workspace/files/zzz`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, "file missing");
    const dots = await call(`${url}/v1/workspace/files/a//x`, { method: "POST", body: "x" });
    assert.equal(dots.status, 400);
  });

  it("a task lists its workspace's top directory, activity that keeps the workspace awake", async (t) => {
    const sandbox = await startFakeServer((): FakeAnswer => ({ body: { path: "", entries: [] } }));
    t.after(() => sandbox.close());
    const { url } = await serve({
      AGENTRY_MODEL_PROVIDER: "echo",
      AGENTRY_WORKSPACE: "w",
      AGENTRY_WORKSPACE_URL: `${sandbox.url}/workspaces/ns.w`,
    });
    assert.equal(sandbox.requests.length, 0);
    const task = await post(`${url}/v1/tasks`, { input: "hello" });
    assert.equal(task.status, 200);
    await waitFor("the workspace touched", () =>
      sandbox.requests.some((r) => r.method === "GET" && r.path.startsWith("/workspaces/ns.w/dir")),
    );
  });

  it("an unreachable sandbox is a 502", async () => {
    const { url } = await serve({
      AGENTRY_MODEL_PROVIDER: "echo",
      AGENTRY_WORKSPACE_URL: `http://127.0.0.1:${await freePort()}/workspaces/w`,
    });
    const res = await post(`${url}/v1/workspace/exec`, { command: ["ls"] });
    assert.equal(res.status, 502);
    assert.match(res.body.detail, /workspace sandbox is unreachable/);
  });
});

describe("agent API: tokens", () => {
  it("refuses calls without a token (401) and tokens that do not open them (403); probes stay open", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "openai", AGENTRY_MODEL: "gpt" });
    const other = await testTrust();
    const cases: [string, string, Record<string, string>, number, RegExp][] = [
      ["POST", "/v1/tasks", {}, 401, /missing bearer token/],
      ["GET", "/v1/info", {}, 401, /missing bearer token/],
      ["POST", "/v1/workspace/exec", {}, 401, /missing bearer token/],
      ["GET", "/v1/workspace/files/a", {}, 401, /missing bearer token/],
      ["GET", "/nope", {}, 401, /missing bearer token/],
      ["GET", "/readyz", { authorization: "Bearer x.y.z" }, 401, /malformed|invalid/],
      ["POST", "/v1/tasks", await other.bearer("agent:ns/agent"), 401, /unknown key/],
      ["POST", "/v1/tasks", await trust.bearer("agent:ns/other"), 403, /token is for agent:ns\/other/],
      ["POST", "/v1/tasks", await trust.bearer("workspace:ns.w"), 403, /token is for workspace:ns.w/],
      ["POST", "/v1/tasks", await trust.bearer("agent:ns/agent", ["status"]), 403, /does not allow tasks/],
      ["GET", "/v1/info", await trust.bearer("agent:ns/agent", ["tasks"]), 403, /does not allow status/],
    ];
    for (const [method, path, headers, status, detail] of cases) {
      const res = await call(`${url}${path}`, { method, headers });
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.type, "application/problem+json");
      assert.match(res.body.detail, detail);
    }
    await other.remove();
    assert.equal((await call(`${url}/healthz`, { headers: {} })).status, 200);
    const bare = await call(`${url}/readyz`, { headers: {} });
    assert.deepEqual([bare.status, bare.body], [503, { status: "error" }], "no reason without a token");
    const full = await call(`${url}/readyz`, { headers: await trust.bearer("pod:ns/agent-pod", ["status"]) });
    assert.equal(full.status, 503);
    assert.match(full.body.reason, /needs an API key/, "the reason for a token of the pod");
  });

  it("sends the workspace token from its file, read again at every call", async (t) => {
    const sandbox = await startFakeServer(() => ({ body: { id: "ns.w", ownerId: null, createdAt: "now" } }));
    t.after(() => sandbox.close());
    const file = join(trust.dir, "..", `ws-token-${process.pid}`);
    await writeFile(file, "first-token\n");
    const { app, url } = await serve({
      AGENTRY_MODEL_PROVIDER: "echo",
      AGENTRY_WORKSPACE_URL: `${sandbox.url}/workspaces/ns.w`,
      AGENTRY_WORKSPACE_TOKEN_FILE: file,
    });
    await app.checkWorkspace();
    assert.equal(sandbox.requests.at(-1)!.headers.authorization, "Bearer first-token");
    await writeFile(file, "refreshed-token\n");
    await post(`${url}/v1/workspace/exec`, { command: ["true"] });
    assert.equal(sandbox.requests.at(-1)!.headers.authorization, "Bearer refreshed-token");
  });
});
