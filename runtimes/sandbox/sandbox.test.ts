// Integration test: the real sandbox program (main.ts) as a child process on loopback,
// exercised over HTTP through the typed client and raw requests — the contract the
// operator relies on.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../../test/harness/paths.ts";
import { freePort, waitFor } from "../../test/harness/process.ts";
import type { Problem } from "../../contracts/problem.ts";
import { SandboxApiError, SandboxClient } from "../../contracts/sandbox.client.ts";
import { testTrust, type TestTrust } from "../../test/harness/tokens.ts";
import type { ExecResult, ExecStreamRecord } from "../../contracts/sandbox.ts";

/** Every sandbox here is pod test/sandbox-it, trusting a key of the test's own. */
const POD_AUDIENCE = "pod:test/sandbox-it";

interface Sandbox {
  child: ChildProcess;
  port: number;
  /** Its /metrics (Prometheus), on a port apart from the API. */
  metricsUrl: string;
  root: string;
  logs: Record<string, unknown>[];
  output: string[];
  exited: Promise<number | null>;
  trust: TestTrust;
  /** A client with a token for this pod, allowing everything. */
  client: SandboxClient;
}

async function startSandbox(args: string[], listen: string): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), "agentry-sandbox-it-"));
  const trust = await testTrust("agentry-operator", root);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repoRoot, "runtimes/sandbox/main.ts"),
      `--listen=${listen}`,
      "--metrics-addr=127.0.0.1:0",
      `--root=${root}/ws`,
      ...args,
    ],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH,
        AGENTRY_LOG_LEVEL: "debug",
        AGENTRY_TRUST_DIR: trust.dir,
        AGENTRY_POD_NAME: "sandbox-it",
        AGENTRY_POD_NAMESPACE: "test",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logs: Record<string, unknown>[] = [];
  const output: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    output.push(line);
    logs.push(JSON.parse(line) as Record<string, unknown>); // every log line must be JSON
  });
  createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const { port, metricsPort } = await waitFor("the sandbox to listen", () => {
    if (child.exitCode !== null) throw new Error(`sandbox exited ${child.exitCode}: ${output.join("\n")}`);
    const line = logs.find((l) => l.message === "sandbox listening");
    return line ? { port: Number(line.port), metricsPort: Number(line.metricsPort) } : undefined;
  });
  const token = () => trust.token(POD_AUDIENCE);
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  return { child, port, metricsUrl, root, logs, output, exited, trust, client: client(port, token) };
}

/** The exec counters of a sandbox's /metrics: by outcome, and the histogram's count. */
async function execCounts(metricsUrl: string) {
  const text = await (await fetch(metricsUrl)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^agentry_sandbox_execs_total\{outcome="(\w+)"\} (\d+)$/gm))
    counts[m[1]!] = Number(m[2]);
  const observed = Number(/^agentry_sandbox_exec_duration_seconds_count (\d+)$/m.exec(text)?.[1] ?? NaN);
  return { exited: counts.exited ?? NaN, timed_out: counts.timed_out ?? NaN, observed };
}

async function stopSandbox(s: Sandbox): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill("SIGKILL");
    await s.exited;
  }
  await rm(s.root, { recursive: true, force: true });
}

const client = (port: number, token?: string | (() => Promise<string>)) =>
  new SandboxClient({ baseUrl: `http://127.0.0.1:${port}`, token });

/** A request exactly as written (fetch would normalise "..", "%2e%2e" away). */
function raw(
  port: number,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** The authorization header of a token for the pod, allowing everything (set in before). */
let auth: Record<string, string> = {};

async function rejectsWith(status: number, promise: Promise<unknown>, detail?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SandboxApiError, String(err));
    assert.equal(err.status, status, err.message);
    if (detail) assert.match(err.problem?.detail ?? "", detail);
    return true;
  });
}

function assertProblem(
  res: { status: number; headers: Record<string, unknown>; text: string },
  status: number,
): Problem {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers["content-type"], "application/problem+json");
  const body = JSON.parse(res.text) as Problem;
  assert.deepEqual(Object.keys(body).sort(), ["detail", "status", "title", "type"]);
  assert.equal(body.status, status);
  assert.doesNotMatch(res.text, /at .*\.ts:\d+/); // never a stack trace
  return body;
}

/** Starts `sh -c script` in the workspace and resolves once it is running (it touches "started"). */
async function commandRunning(sb: Sandbox, id: string, script: string) {
  const result = sb.client.exec(id, { command: ["sh", "-c", `touch started; ${script}`] });
  await waitFor("the command to start", () => existsSync(join(sb.root, "ws", id, "started")));
  return { result }; // wrapped: returning the promise itself would wait for the command's end
}

/** A fresh sandbox with one command running in workspace "w", then SIGTERM. */
async function sigtermDuring(t: { after: (fn: () => Promise<void>) => void }, grace: string, script: string) {
  const sb = await startSandbox([`--shutdown-grace=${grace}s`], "127.0.0.1:0");
  t.after(() => stopSandbox(sb));
  await sb.client.createWorkspace("w");
  const { result: inFlight } = await commandRunning(sb, "w", script);
  sb.child.kill("SIGTERM");
  return { sb, inFlight };
}

describe("sandbox runtime over HTTP", () => {
  let sb: Sandbox;
  let api: SandboxClient;
  before(async () => {
    const port = await freePort();
    sb = await startSandbox(
      [
        "--allow-load-override",
        "--max-workspaces=3",
        "--max-exec=5s",
        "--max-output-bytes=1000",
        "--max-concurrent-exec=2",
        "--max-queued-exec-per-workspace=1",
        "--max-file-bytes=100000",
      ],
      `127.0.0.1:${port}`,
    );
    assert.equal(sb.port, port);
    api = sb.client;
    auth = await sb.trust.bearer(POD_AUDIENCE);
  });
  after(async () => {
    if (sb) await stopSandbox(sb);
  });

  it("serves health without a token and everything else only with a signed token for it", async () => {
    assert.deepEqual(JSON.parse((await raw(sb.port, "GET", "/healthz")).text), { status: "ok" });
    assert.equal((await raw(sb.port, "GET", "/readyz")).status, 200);
    for (const path of ["/status", "/workspaces", "/workspaces/x", "/nope"]) {
      const res = assertProblem(await raw(sb.port, "GET", path), 401);
      assert.match(res.detail, /bearer token/);
    }
    assertProblem(await raw(sb.port, "GET", "/status", { headers: { authorization: "Bearer wrong" } }), 401);
    await rejectsWith(401, client(sb.port).status());
    await rejectsWith(401, client(sb.port, "wrong").createWorkspace("x"));
    const otherPod = () => sb.trust.token("pod:test/another-sandbox");
    await rejectsWith(403, client(sb.port, otherPod).status(), /not for this pod/);
    const statusOnly = () => sb.trust.token(POD_AUDIENCE, ["status"]);
    await rejectsWith(403, client(sb.port, statusOnly).drain(), /does not allow drain/);
    assert.equal(await api.healthy(), true);
  });

  it("serves /metrics without a token on its metrics port only", async () => {
    const text = await (await fetch(sb.metricsUrl)).text();
    for (const name of [
      "agentry_sandbox_execs_total",
      "agentry_sandbox_exec_duration_seconds",
      "agentry_sandbox_execs_in_flight",
      "agentry_sandbox_workspaces",
      "agentry_sandbox_flushes_total",
      "agentry_sandbox_flush_bytes_total",
      "process_cpu_seconds_total",
    ])
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.match(text, /^agentry_sandbox_flushes_total\{result="failure"\} 0$/m);
    assert.equal((await raw(sb.port, "GET", "/metrics", { headers: auth })).status, 404);
    assert.equal((await fetch(sb.metricsUrl.replace("/metrics", "/status"))).status, 404);
  });

  it("reports its load and capacity", async () => {
    const status = await api.status();
    assert.deepEqual(Object.keys(status).sort(), [
      "cpu",
      "draining",
      "maxWorkspaces",
      "memory",
      "workspaces",
    ]);
    for (const v of [status.cpu, status.memory]) assert.ok(v >= 0 && v <= 1, String(v));
    assert.equal(status.draining, false);
    assert.equal(status.maxWorkspaces, 3);
  });

  it("pins the reported load with the override and clears it with null", async () => {
    assert.equal((await api.overrideLoad({ cpu: 0.93, memory: 0.91 })).cpu, 0.93);
    assert.deepEqual([(await api.status()).cpu, (await api.status()).memory], [0.93, 0.91]);
    await api.overrideLoad({ cpu: null, memory: 0.5 });
    const status = await api.status();
    assert.notEqual(status.cpu, 0.93);
    assert.equal(status.memory, 0.5);
    await rejectsWith(400, api.overrideLoad({ cpu: 2 }), /cpu/);
    await api.overrideLoad({});
    assert.notEqual((await api.status()).memory, 0.5);
  });

  it("creates, lists, gets and deletes workspaces idempotently, within the maximum", async () => {
    const first = await api.createWorkspace("team-a.ws1", { ownerId: "alice" });
    assert.equal(first.created, true);
    assert.deepEqual(Object.keys(first.workspace).sort(), [
      "createdAt",
      "durability",
      "id",
      "lastActivityTime",
      "ownerId",
    ]);
    assert.equal(first.workspace.lastActivityTime, first.workspace.createdAt, "no call yet");
    assert.equal(first.workspace.ownerId, "alice");
    // Without a store the files are ready at once, and nothing says they are durable.
    assert.equal(first.workspace.durability?.durable, false);
    const { durability: _d, ...plain } = first.workspace;
    const again = await api.createWorkspace("team-a.ws1", { ownerId: "alice" });
    assert.equal(again.created, false);
    assert.deepEqual({ ...again.workspace, durability: undefined }, { ...plain, durability: undefined });
    const got = await api.getWorkspace("team-a.ws1");
    assert.equal(got?.durability?.phase, "ready");
    assert.match(got?.durability?.message ?? "", /no object store configured/);
    assert.equal(await api.getWorkspace("team-a.missing"), undefined);
    assert.equal((await api.createWorkspace("team-a.ws2")).workspace.ownerId, null);
    await api.createWorkspace("team-a.ws3");
    await rejectsWith(409, api.createWorkspace("team-a.ws4"), /maximum of 3/);
    assert.deepEqual(
      (await api.listWorkspaces()).map((w) => w.id),
      ["team-a.ws1", "team-a.ws2", "team-a.ws3"],
    );
    assert.equal((await api.status()).workspaces, 3);
    await api.deleteWorkspace("team-a.ws3");
    await api.deleteWorkspace("team-a.ws3");
    assert.equal(existsSync(join(sb.root, "ws", "team-a.ws3")), false);
    await api.deleteWorkspace("team-a.ws2");
    for (const id of ["Upper", "under_score", ".hidden", "a..b/", "x".repeat(254)]) {
      const res = assertProblem(
        await raw(sb.port, "PUT", `/workspaces/${encodeURIComponent(id)}`, { headers: auth }),
        400,
      );
      assert.match(res.detail, /workspace id/);
    }
  });

  it("reports each workspace's last data-plane call, and now while a command runs", async () => {
    await api.createWorkspace("team-a.busy");
    const activity = async () => Date.parse((await api.getWorkspace("team-a.busy"))!.lastActivityTime!);
    const created = await activity();
    await api.writeFile("team-a.busy", "f.txt", "x");
    const written = await activity();
    assert.ok(written >= created, "a write is activity");
    assert.equal(await activity(), written, "reading the workspace's own record is not");
    const gone = new AbortController();
    const running = api
      .exec("team-a.busy", { command: ["sleep", "30"] }, { signal: gone.signal })
      .catch(() => undefined);
    const started = await waitFor("the command to start", async () => {
      const t = await activity();
      return t > written ? t : undefined;
    });
    await waitFor("the running command to count as activity", async () => (await activity()) > started);
    gone.abort();
    await running;
    await api.deleteWorkspace("team-a.busy");
  });

  it("stores, replaces, reads and deletes files", async () => {
    assert.deepEqual(await api.writeFile("team-a.ws1", "src/main.py", "print('hi')\n"), { created: true });
    assert.deepEqual(await api.writeFile("team-a.ws1", "src/main.py", new Uint8Array([0, 1, 2, 255])), {
      created: false,
    });
    assert.deepEqual([...(await api.readFile("team-a.ws1", "src/main.py"))], [0, 1, 2, 255]);
    await api.writeFile("team-a.ws1", "name with spaces & ü.txt", "ok");
    assert.equal(await api.readTextFile("team-a.ws1", "name with spaces & ü.txt"), "ok");
    await rejectsWith(404, api.readFile("team-a.ws1", "missing.txt"));
    await rejectsWith(404, api.readFile("team-a.nope", "x"), /workspace/);
    await api.deleteFile("team-a.ws1", "src/main.py");
    await api.deleteFile("team-a.ws1", "src/main.py");
    await rejectsWith(404, api.readFile("team-a.ws1", "src/main.py"));
    await rejectsWith(413, api.writeFile("team-a.ws1", "big", new Uint8Array(150_000)), /limit/);
  });

  it("refuses every path that leaves the workspace", async () => {
    await api.writeFile("team-a.ws1", "inside.txt", "x");
    const hostile = [
      "../x",
      "a/../../b",
      "..",
      "%2e%2e/x",
      "%2E%2E/%2E%2E/etc/passwd",
      "a%2F..%2F..%2Fb",
      "/etc/passwd",
      "%2Fetc%2Fpasswd",
      "a%00b",
      "./inside.txt",
    ];
    for (const path of hostile)
      for (const method of ["GET", "PUT", "DELETE"]) {
        const res = await raw(sb.port, method, `/workspaces/team-a.ws1/files/${path}`, {
          headers: auth,
          body: "x",
        });
        assert.equal(res.status, 400, `${method} ${path}: ${res.status} ${res.text}`);
      }
    // A symlink made by a command must not lead out either.
    const ln = await api.exec("team-a.ws1", { command: ["ln", "-s", "/", "escape"] });
    assert.equal(ln.exitCode, 0, ln.stderr);
    await rejectsWith(400, api.readFile("team-a.ws1", "escape/etc/passwd"), /outside the workspace/);
    await rejectsWith(400, api.writeFile("team-a.ws1", "escape/tmp/agentry-pwned", "x"), /outside/);
    assert.equal(existsSync("/tmp/agentry-pwned"), false);
    await rejectsWith(400, api.writeFile("team-a.ws1", "../x", "x")); // the client refuses too
  });

  it("runs argv without a shell, in the workspace, with limits", async () => {
    const before = await execCounts(sb.metricsUrl);
    const r = await api.exec("team-a.ws1", {
      command: ["sh", "-c", 'printf "%s|" "$@"; pwd; echo "$FOO $HOME"; cat', "sh", "; rm -rf /", "$(id)"],
      env: { FOO: "bar" },
      stdin: "from stdin",
    });
    assert.equal(r.exitCode, 0, r.stderr);
    const ws = join(sb.root, "ws", "team-a.ws1");
    assert.equal(r.stdout, `; rm -rf /|$(id)|${ws}\nbar ${ws}\nfrom stdin`);
    assert.deepEqual(Object.keys(r).sort(), [
      "durationMs",
      "exitCode",
      "signal",
      "stderr",
      "stdout",
      "timedOut",
      "truncated",
    ]);
    const literal = await api.exec("team-a.ws1", { command: ["echo", "; touch pwned"] });
    assert.equal(literal.stdout, "; touch pwned\n");
    assert.equal(existsSync(join(ws, "pwned")), false);

    const slow = await api.exec("team-a.ws1", { command: ["sleep", "30"], timeoutSeconds: 0.3 });
    assert.deepEqual([slow.timedOut, slow.signal, slow.exitCode], [true, "SIGKILL", null]);
    const loud = await api.exec("team-a.ws1", { command: ["head", "-c", "5000", "/dev/zero"] });
    assert.deepEqual([loud.truncated, loud.stdout.length], [true, 1000]);
    assert.equal((await api.exec("team-a.ws1", { command: ["false"] })).exitCode, 1);
    // Counted on the metrics port: four exits (false's included) and one time limit.
    const after = await execCounts(sb.metricsUrl);
    assert.deepEqual(
      [after.exited - before.exited, after.timed_out - before.timed_out, after.observed - before.observed],
      [4, 1, 5],
    );

    await rejectsWith(
      400,
      api.exec("team-a.ws1", { command: ["true"], timeoutSeconds: 60 }),
      /timeoutSeconds/,
    );
    await rejectsWith(400, api.exec("team-a.ws1", { command: [] as unknown as [string] }), /command/);
    await rejectsWith(404, api.exec("team-a.nope", { command: ["true"] }));
    const bad = await raw(sb.port, "POST", "/workspaces/team-a.ws1/exec", {
      headers: auth,
      body: "{not json",
    });
    assert.match(assertProblem(bad, 400).detail, /not valid JSON/);
  });

  it("gives each workspace a fair share of exec slots: one waits in its queue, more get 429", async () => {
    await api.createWorkspace("team-a.ws2");
    await api.deleteFile("team-a.ws1", "started");
    const long = api.exec("team-a.ws1", {
      command: ["sh", "-c", "touch started; sleep 30"],
      timeoutSeconds: 2,
    });
    await waitFor("the long command to start", () =>
      existsSync(join(sb.root, "ws", "team-a.ws1", "started")),
    );
    // ws1 holds its share (1 of 2 slots): of two more commands one waits, the other is refused.
    const more = [1, 2].map(() =>
      raw(sb.port, "POST", "/workspaces/team-a.ws1/exec", {
        headers: auth,
        body: JSON.stringify({ command: ["echo", "queued"] }),
      }),
    );
    const refused = await Promise.race(more);
    assert.match(assertProblem(refused, 429).detail, /its share of this sandbox/);
    assert.equal(refused.headers["retry-after"], "2");
    // Another workspace gets the free slot at once.
    assert.equal((await api.exec("team-a.ws2", { command: ["echo", "ws2"] })).stdout, "ws2\n");
    await api.deleteWorkspace("team-a.ws2");
    // Once the long command ends, the queued one runs.
    assert.equal((await long).timedOut, true);
    const done = await Promise.all(more);
    assert.deepEqual(done.map((r) => r.status).sort(), [200, 429]);
    assert.equal((JSON.parse(done.find((r) => r.status === 200)!.text) as ExecResult).stdout, "queued\n");
  });

  it("streams output as JSON lines and kills the command when the client goes away", async () => {
    const records = [];
    for await (const r of api.execStream("team-a.ws1", {
      command: ["sh", "-c", "echo a; echo b >&2; exit 2"],
    }))
      records.push(r);
    assert.deepEqual(
      records
        .filter((r) => r.type === "stdout" || r.type === "stderr")
        .sort((x, y) => x.type.localeCompare(y.type)),
      [
        { type: "stderr", data: "b\n" },
        { type: "stdout", data: "a\n" },
      ],
    );
    const exit = records.at(-1);
    assert.ok(exit?.type === "exit" && exit.exitCode === 2 && !exit.timedOut, JSON.stringify(exit));

    // Leaving the loop closes the connection: the command (and its setsid child) die.
    const marker = `ws1-stream-${Date.now()}`;
    const script = `setsid sh -c 'while :; do sleep 1; done' & echo go; while :; do echo ${marker} >> log; sleep 0.1; done`;
    const log = join(sb.root, "ws", "team-a.ws1", "log");
    for await (const r of api.execStream("team-a.ws1", { command: ["sh", "-c", script] }))
      if (r.type === "stdout" && r.data.includes("go")) {
        await waitFor("the command to write its log", () => existsSync(log));
        break;
      }
    await waitFor("the cancelled command to be logged", () =>
      sb.logs.some((l) => l.message === "command finished" && l.cancelled === true),
    );
    const size = async () => (await api.readFile("team-a.ws1", "log")).length;
    const before = await size();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await size(), before, "the command kept writing after the client went away");
  });

  it("cancels a command by its exec id from another connection; the stream ends with its exit", async () => {
    const execId = randomUUID();
    const records: ExecStreamRecord[] = [];
    const stream = (async () => {
      const command: [string, ...string[]] = ["sh", "-c", "echo go; exec sleep 300"];
      for await (const r of api.execStream("team-a.ws1", { command }, { execId })) records.push(r);
    })();
    await waitFor("the command to start", () => records.some((r) => r.type === "stdout"));
    // Another workspace's id, and an id nobody started, stop nothing.
    assert.equal(await api.cancelExec("team-a.ws2", execId), false);
    assert.equal(await api.cancelExec("team-a.ws1", randomUUID()), false);
    assert.equal(await api.cancelExec("team-a.ws1", execId), true);
    await stream;
    assert.deepEqual(
      [records.at(-1)?.type, (records.at(-1) as { signal?: string }).signal],
      ["exit", "SIGKILL"],
    );
    assert.equal(await api.cancelExec("team-a.ws1", execId), false, "an ended command is no longer known");
    const bad = await raw(sb.port, "POST", "/workspaces/team-a.ws1/exec", {
      headers: { ...auth, "x-exec-id": "not-a-uuid", "content-type": "application/json" },
      body: JSON.stringify({ command: ["true"] }),
    });
    assert.match(assertProblem(bad, 400).detail, /x-exec-id/);
  });

  it("stops a workspace's running commands when the workspace is deleted", async () => {
    await api.createWorkspace("team-c.tmp");
    const { result: running } = await commandRunning(sb, "team-c.tmp", "sleep 30");
    await api.deleteWorkspace("team-c.tmp");
    const result = await running;
    assert.deepEqual([result.signal, result.timedOut], ["SIGKILL", false]);
    assert.equal(existsSync(join(sb.root, "ws", "team-c.tmp")), false);
  });

  it("drains: no new workspaces, existing ones keep working, until undrained", async () => {
    assert.deepEqual(await api.drain(), { draining: true });
    assert.equal(await api.ready(), false);
    assert.equal((await api.status()).draining, true);
    await rejectsWith(503, api.createWorkspace("team-b.new"), /draining/);
    const res = await raw(sb.port, "PUT", "/workspaces/team-b.new", { headers: auth });
    assertProblem(res, 503);
    assert.equal((await api.createWorkspace("team-a.ws1")).created, false);
    await api.writeFile("team-a.ws1", "during-drain.txt", "still works");
    assert.equal(
      (await api.exec("team-a.ws1", { command: ["cat", "during-drain.txt"] })).stdout,
      "still works",
    );
    assert.deepEqual(await api.undrain(), { draining: false });
    assert.equal(await api.ready(), true);
    assert.equal((await api.createWorkspace("team-b.new")).created, true);
  });

  it("answers unknown routes 404 and wrong methods 405, as problem+json", async () => {
    assertProblem(await raw(sb.port, "GET", "/nope", { headers: auth }), 404);
    assertProblem(await raw(sb.port, "GET", "/workspaces/team-a.ws1/other", { headers: auth }), 404);
    const r = await raw(sb.port, "POST", "/workspaces/team-a.ws1", { headers: auth });
    assertProblem(r, 405);
    assert.equal(r.headers.allow, "GET, PUT, DELETE");
    assertProblem(await raw(sb.port, "DELETE", "/status", { headers: auth }), 405);
    const big = JSON.stringify({ command: ["echo", "x".repeat(2 * 1024 * 1024)] });
    assertProblem(
      await raw(sb.port, "POST", "/workspaces/team-a.ws1/exec", { headers: auth, body: big }),
      413,
    );
  });

  it("never logs the token or file contents", () => {
    const all = sb.output.join("\n");
    assert.ok(!all.includes(auth.authorization!.slice("Bearer ".length)));
    assert.doesNotMatch(all, /still works|print\('hi'\)/);
    assert.ok(sb.logs.some((l) => l.message === "command finished"));
  });
});

describe("sandbox runtime lifecycle", () => {
  it("logs the port it chose for port 0 and serves no load override without the flag", async (t) => {
    const sb = await startSandbox([], "127.0.0.1:0");
    t.after(() => stopSandbox(sb));
    assert.ok(sb.port > 0);
    assert.equal((await sb.client.status()).maxWorkspaces, 32);
    await rejectsWith(404, sb.client.overrideLoad({ cpu: 1 }));
  });

  it("on SIGTERM stops accepting, finishes in-flight commands and exits 0", async (t) => {
    const { sb, inFlight } = await sigtermDuring(t, "20", "sleep 1; echo finished");
    await waitFor("the sandbox to stop accepting connections", async () => {
      const err = await sb.client.healthy().then(
        () => undefined,
        (e: unknown) => e,
      );
      return err instanceof SandboxApiError && err.status === 0;
    });
    const result = await inFlight;
    assert.equal(result.stdout, "finished\n");
    assert.equal(result.exitCode, 0);
    assert.equal(await sb.exited, 0);
    assert.ok(sb.logs.some((l) => l.message === "sandbox stopped"));
  });

  it("on SIGTERM kills commands still running after the grace period and exits 0", async (t) => {
    const { sb, inFlight } = await sigtermDuring(t, "0.5", "sleep 60");
    const result = await inFlight;
    assert.equal(result.signal, "SIGKILL");
    assert.equal(await sb.exited, 0);
  });
});
