// The agent's HTTP API in-process: readiness states, task errors and the workspace
// passthrough to a scripted sandbox on loopback.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { startFakeServer, type FakeAnswer } from "../../test/harness/fakehttp.ts";
import { freePort } from "../../test/harness/process.ts";
import { loadAgentConfig, type AgentConfig } from "./config.ts";
import { AgentApp } from "./server.ts";

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function serve(env: Record<string, string>): Promise<{ app: AgentApp; url: string }> {
  const cfg = loadAgentConfig([], env) as AgentConfig;
  const app = new AgentApp(cfg, silentLogger());
  const server = createServer(app.handle);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { app, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function call(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    body: text ? JSON.parse(text) : undefined,
  };
}
const post = (url: string, body: unknown) =>
  call(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

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
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo", AGENTRY_ECHO_DELAY_MS: "3000" });
    const res = await post(`${url}/v1/tasks`, { input: "x", timeoutSeconds: 0.2 });
    assert.equal(res.status, 504);
    assert.match(res.body.detail, /did not answer within 0.2 s/);
  });

  it("unknown routes and methods are problems", async () => {
    const { url } = await serve({ AGENTRY_MODEL_PROVIDER: "echo" });
    assert.equal((await call(`${url}/nope`)).status, 404);
    assert.equal((await call(`${url}/v1/tasks`)).status, 405);
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

    const got = await fetch(`${url}/v1/workspace/files/a/b.txt`);
    assert.equal(await got.text(), "content");
    const missing = await call(`${url}/v1/workspace/files/zzz`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.detail, "file missing");
    const dots = await call(`${url}/v1/workspace/files/a//x`, { method: "POST", body: "x" });
    assert.equal(dots.status, 400);
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
