// Integration test: the real agent program (main.ts) as a child process on loopback in
// echo mode — serve (health, readiness, tasks, 429, SIGTERM) and dispatch against it.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../../test/harness/paths.ts";
import { freePort, waitFor } from "../../test/harness/process.ts";
import { testTrust, type TestTrust } from "../../test/harness/tokens.ts";

const MAIN = join(repoRoot, "runtimes/agent/main.ts");

interface Agent {
  child: ChildProcess;
  url: string;
  /** Its /metrics (Prometheus), on a port apart from the API. */
  metricsUrl: string;
  output: string[];
  exited: Promise<number | null>;
}

const agents: Agent[] = [];
async function startAgent(env: Record<string, string>, args: string[] = []): Promise<Agent> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", MAIN, "serve", "--host=127.0.0.1", "--port=0", "--metrics-addr=127.0.0.1:0", ...args],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH,
        AGENTRY_AGENT_NAME: "it",
        AGENTRY_NAMESPACE: "ns",
        AGENTRY_TRUST_DIR: trust.dir,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const output: string[] = [];
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    output.push(line);
    logs.push(JSON.parse(line) as Record<string, unknown>); // every log line is JSON
  });
  createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const { port, metricsPort } = await waitFor("the agent to listen", () => {
    if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}: ${output.join("\n")}`);
    const line = logs.find((l) => l.message === "agent listening");
    return line ? { port: Number(line.port), metricsPort: Number(line.metricsPort) } : undefined;
  });
  const agent = {
    child,
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    output,
    exited,
  };
  agents.push(agent);
  return agent;
}

after(async () => {
  for (const a of agents)
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill("SIGKILL");
  await Promise.all(agents.map((a) => a.exited));
});

/** Runs the program to its end. */
function runProgram(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A request with a token for agent ns/it allowing everything, unless `init.headers` is given. */
async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, { ...init, headers: init?.headers ?? auth });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}
const task = (url: string, body: unknown) =>
  getJson(`${url}/v1/tasks`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify(body),
  });

let dir: string;
let trust: TestTrust;
let auth: Record<string, string>;
/** A file holding a tasks token for agent ns/it, as the operator mounts one into a run's pod. */
let tokenFile: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "agentry-agent-it-"));
  trust = await testTrust();
  auth = await trust.bearer("agent:ns/it");
  tokenFile = join(dir, "agent-token");
  await writeFile(tokenFile, await trust.token("agent:ns/it", ["tasks"]));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  await trust.remove();
});

async function manifest(steps: unknown[]): Promise<string> {
  const path = join(dir, `manifest-${steps.length}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify({ pipeline: "pl", namespace: "ns", steps }));
  return path;
}

describe("agent program: serve in echo mode", () => {
  let agent: Agent;
  before(async () => {
    agent = await startAgent({ AGENTRY_MODEL_PROVIDER: "echo" });
  });

  it("is healthy and ready", async () => {
    const health = await getJson(`${agent.url}/healthz`, { headers: {} });
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: "ok" });
    assert.equal((await getJson(`${agent.url}/v1/info`, { headers: {} })).status, 401);
    const ready = await getJson(`${agent.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: "ready" });
    const info = await getJson(`${agent.url}/v1/info`);
    assert.equal(info.body.name, "it");
    assert.equal(info.body.provider, "echo");
    assert.equal(info.body.workspace, null);
  });

  it("answers a task with the input echoed, and counts it on its metrics port", async () => {
    const succeeded = async () =>
      Number(
        /^agentry_agent_tasks_total\{result="succeeded"\} (\d+)$/m.exec(
          await (await fetch(agent.metricsUrl)).text(),
        )?.[1],
      );
    const before = await succeeded();
    const res = await task(agent.url, { input: "plan the migration", metadata: { ticket: 1 } });
    assert.equal(await succeeded(), before + 1);
    const text = await (await fetch(agent.metricsUrl)).text();
    assert.match(text, /^agentry_agent_tasks_running 0$/m);
    assert.match(text, /^# TYPE agentry_agent_task_duration_seconds histogram$/m);
    assert.equal((await getJson(`${agent.url}/metrics`)).status, 404, "not on the API port");
    assert.equal(res.status, 200);
    assert.equal(res.body.output, "plan the migration");
    assert.equal(res.body.model, "echo");
    assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof res.body.durationMs, "number");
    assert.ok(
      !agent.output.some((l) => l.includes("plan the migration")),
      "inputs are not logged at info level",
    );
  });

  it("streams a task as NDJSON records and lists recent tasks, newest first", async () => {
    const res = await fetch(`${agent.url}/v1/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/x-ndjson", ...auth },
      body: JSON.stringify({ input: "stream me" }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const records = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; id?: string; data?: string; output?: string });
    // Echo streams word by word, as a model would: output pieces, then the whole result.
    assert.deepEqual(
      records.map((r) => r.type),
      ["started", "output", "output", "result"],
    );
    assert.equal(
      records
        .filter((r) => r.type === "output")
        .map((r) => r.data)
        .join(""),
      "stream me",
    );
    assert.equal(records.at(-1)!.output, "stream me");
    assert.equal(records.at(-1)!.id, records[0]!.id);
    const list = await getJson(`${agent.url}/v1/tasks`);
    assert.equal(list.status, 200);
    assert.deepEqual(
      { id: list.body.items[0].id, status: list.body.items[0].status, input: list.body.items[0].input },
      { id: records[0]!.id, status: "succeeded", input: "stream me" },
    );
    assert.equal((await getJson(`${agent.url}/v1/tasks`, { headers: {} })).status, 401);
  });

  it("dispatch runs a step on it and prints the output", async () => {
    const path = await manifest([
      { name: "prep", image: "tools:1" },
      { name: "review", agentRef: { name: "it" }, input: "review the diff", timeoutSeconds: 30 },
    ]);
    const run = await runProgram(["dispatch", "--manifest", path, "--step", "review"], {
      AGENTRY_AGENT_URL: agent.url,
      AGENTRY_AGENT_TOKEN_FILE: tokenFile,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "review the diff\n");
    assert.equal(run.stderr, "");
    const override = await runProgram(["dispatch", "--manifest", path, "--step", "review"], {
      AGENTRY_AGENT_URL: agent.url,
      AGENTRY_AGENT_TOKEN_FILE: tokenFile,
      AGENTRY_STEP_INPUT: "from the env",
    });
    assert.equal(override.stdout, "from the env\n");
  });

  it("dispatch without its token file fails at once, saying so; with another agent's token it is refused", async () => {
    const path = await manifest([
      { name: "review", agentRef: { name: "it" }, input: "x", timeoutSeconds: 30 },
    ]);
    const none = await runProgram(["dispatch", "--manifest", path, "--step", "review"], {
      AGENTRY_AGENT_URL: agent.url,
    });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no token for AgentRuntime it: AGENTRY_AGENT_TOKEN_FILE is not set/);
    const wrong = join(dir, "wrong-token");
    await writeFile(wrong, await trust.token("agent:ns/other", ["tasks"]));
    const refused = await runProgram(["dispatch", "--manifest", path, "--step", "review"], {
      AGENTRY_AGENT_URL: agent.url,
      AGENTRY_AGENT_TOKEN_FILE: wrong,
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /agent it answered 403: token is for agent:ns\/other/);
  });

  it("dispatch of a step missing from the manifest fails clearly", async () => {
    const path = await manifest([{ name: "review", agentRef: { name: "it" }, input: "x" }]);
    const run = await runProgram(["dispatch", "--manifest", path, "--step", "nope"], {
      AGENTRY_AGENT_URL: agent.url,
    });
    assert.equal(run.code, 2);
    assert.equal(run.stderr, 'step "nope" is not in the manifest of pipeline pl (steps: review)\n');
    assert.equal(run.stdout, "");
  });

  it("dispatch of an image step or a missing manifest fails clearly", async () => {
    const path = await manifest([{ name: "build", image: "tools:1" }]);
    const image = await runProgram(["dispatch", "--manifest", path, "--step", "build"], {
      AGENTRY_AGENT_URL: agent.url,
    });
    assert.equal(image.code, 2);
    assert.match(image.stderr, /runs an image, not an AgentRuntime/);
    const missing = await runProgram(["dispatch", "--manifest", join(dir, "absent.json"), "--step", "x"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^cannot read the pipeline manifest .*absent.json: ENOENT/);
  });
});

describe("agent program: limits and shutdown", () => {
  it("429 beyond the concurrency cap; SIGTERM lets the running task finish and exits 0", async () => {
    const agent = await startAgent({ AGENTRY_MODEL_PROVIDER: "echo", AGENTRY_ECHO_DELAY: "1500ms" }, [
      "--max-concurrent-tasks=1",
    ]);
    const first = task(agent.url, { input: "slow" });
    await waitFor(
      "the first task to run",
      async () => (await getJson(`${agent.url}/v1/info`)).body.tasks.running === 1,
    );
    const second = await task(agent.url, { input: "too many" });
    assert.equal(second.status, 429);
    assert.equal(second.headers.get("retry-after"), "1");
    assert.match(second.body.detail, /already runs 1 tasks/);
    agent.child.kill("SIGTERM");
    const done = await first;
    assert.equal(done.status, 200);
    assert.equal(done.body.output, "slow");
    assert.equal(await agent.exited, 0);
    assert.ok(agent.output.some((l) => l.includes("agent stopped")));
  });
});

describe("agent program: bad settings", () => {
  it("reports them on /readyz; dispatch against it fails with the reason", async () => {
    const agent = await startAgent({ AGENTRY_MODEL_PROVIDER: "openai", AGENTRY_MODEL: "gpt" });
    assert.equal((await getJson(`${agent.url}/healthz`)).status, 200);
    const ready = await getJson(`${agent.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.status, "error");
    const path = await manifest([{ name: "s", agentRef: { name: "it" }, input: "x", timeoutSeconds: 2 }]);
    const termination = join(dir, "termination-log");
    const run = await runProgram(["dispatch", "--manifest", path, "--step", "s"], {
      AGENTRY_AGENT_URL: agent.url,
      AGENTRY_AGENT_TOKEN_FILE: tokenFile,
      AGENTRY_TERMINATION_LOG: termination,
    });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.match(
      run.stderr,
      /^step timed out after 2 s: agent it answered 503: the agent is not ready: provider openai needs an API key: set spec.model.credentialsSecretRef.*\n$/,
    );
    assert.equal(run.stderr.split("\n").length, 2, "one line");
    assert.equal(await readFile(termination, "utf8"), run.stderr.trim());
  });

  it("dispatch to an agent that is not there fails within the step's time limit", async () => {
    const path = await manifest([{ name: "s", agentRef: { name: "gone" }, input: "x", timeoutSeconds: 1 }]);
    const run = await runProgram(["dispatch", "--manifest", path, "--step", "s"], {
      AGENTRY_AGENT_URL: `http://127.0.0.1:${await freePort()}`,
      AGENTRY_AGENT_TOKEN_FILE: tokenFile,
    });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^step timed out after 1 s: agent gone at http:\/\/127.0.0.1:\d+ is unreachable \(ECONNREFUSED\)\n$/,
    );
  });

  it("--strict exits 2 naming the setting; a bad port exits 2", async () => {
    const strict = await runProgram(["--strict"], {
      AGENTRY_MODEL_PROVIDER: "anthropic",
      AGENTRY_MODEL: "c",
    });
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /provider anthropic needs an API key: set spec.model.credentialsSecretRef/);
    const port = await runProgram([], { AGENTRY_PORT: "99999" });
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port \(AGENTRY_PORT\) must be an integer from 0 to 65535, got "99999"/);
  });
});
