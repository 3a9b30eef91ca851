// The gateway as the data plane, end to end: the real operator places a Workspace on a
// sandbox pod and runs an AgentRuntime; real sandbox and agent runtime processes stand
// behind kwok's pods on loopback (PodBackends), trusting the gateway's published key
// through the operator's trust bundle; the gateway (in process) reaches them only through
// the pod address map, with tokens it signs. Pipeline run logs come from the apiserver's
// pod log API (kwok serves the fake pods' log file). Every route, RBAC denial per verb,
// streaming with cancel (closing and DELETE), upload limits, and the audit records.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MemoryRateLimiter } from "../../gateway/ratelimit.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { appendPodLog } from "../harness/controlplane.ts";
import { createCR, kubectl, waitFor } from "../harness/cluster.ts";
import type { PodBackends } from "../harness/pods.ts";
import { answering, type DataPlane, startDataPlane } from "./dataplane-env.ts";
import { ADMIN_TOKEN, startGateway, type Gateway } from "./harness.ts";

const MAX_UPLOAD = 64 * 1024;
type Cleanup = () => Promise<void>;

/** Records of an NDJSON or SSE answer. */
function parseRecords(text: string, sse: boolean): { type: string; [k: string]: unknown }[] {
  if (!sse)
    return text
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { type: string });
  return text
    .split("\n\n")
    .filter((f) => f.trim())
    .map((f) => {
      const data = f.split("\n").find((l) => l.startsWith("data: "));
      return JSON.parse(data!.slice(6)) as { type: string };
    });
}

/** Reads a streamed answer line by line until `until` says stop; returns what it read. */
async function readUntil(
  res: Response,
  until: (records: { type: string; [k: string]: unknown }[]) => boolean,
): Promise<{ type: string; [k: string]: unknown }[]> {
  const decoder = new TextDecoder();
  let text = "";
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const records = parseRecords(text.slice(0, text.lastIndexOf("\n") + 1), false);
    if (until(records)) {
      reader.releaseLock();
      return records;
    }
  }
  return parseRecords(text, false);
}

describe("the gateway's data plane", () => {
  const cleanups: Cleanup[] = [];
  const ctx = { name: "gateway data plane", after: (fn: Cleanup) => void cleanups.push(fn) };
  let ns: string;
  let gw: Gateway;
  let pods: PodBackends;
  let replica: DataPlane["replica"];
  let base: string;
  let url: string;
  const auth = (token = ADMIN_TOKEN) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    ({ ns, gw, pods, replica } = await startDataPlane(ctx, {
      tokens: {
        "reader-token": { user: "reader", groups: [], via: "token" },
        "nobody-token": { user: "nobody", groups: [], via: "token" },
      },
      maxUploadBytes: MAX_UPLOAD,
    }));
    const rbac = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: reader, namespace: ${ns} }
rules:
  - apiGroups: [agentry.dev]
    resources: [workspaces/files, agentruntimes/tasks, pipelines/logs]
    verbs: [get]
  - apiGroups: [agentry.dev]
    resources: [pipelines]
    verbs: [get]
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [list]
  - apiGroups: [""]
    resources: [pods, pods/log]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: reader, namespace: ${ns} }
subjects: [{ kind: User, name: reader, apiGroup: rbac.authorization.k8s.io }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader }
`;
    const applied = await kubectl(["apply", "-f", "-"], rbac);
    assert.equal(applied.code, 0, applied.stderr);
    url = gw.url;
    await createCR(ns, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
      samplingInterval: "250ms",
    });
    await createCR(ns, "Workspace", "ws", { fleetRef: { name: "fleet" } });
    await createCR(ns, "Workspace", "asleep", { fleetRef: { name: "fleet" }, suspended: true });
    await createCR(ns, "Workspace", "homeless", { fleetRef: { name: "no-such-fleet" } });
    await createCR(ns, "AgentRuntime", "agent", { image: "registry.example/agent:1" });
    await createCR(ns, "AgentRuntime", "slow", {
      image: "registry.example/agent:1",
      env: [{ name: "AGENTRY_ECHO_DELAY", value: "2m" }],
    });
    await createCR(ns, "AgentRuntime", "resting", { image: "registry.example/agent:1", suspended: true });
    await createCR(ns, "Pipeline", "once", {
      schedule: "",
      steps: [{ name: "s", image: "registry.example/step:1", command: ["true"] }],
    });
    base = `/v1/namespaces/${ns}`;
    // Ready: each answers through the gateway (placed or Ready, the gateway's key trusted).
    await answering(gw, ns, "the workspace", "workspaces/ws/files");
    await answering(gw, ns, "the slow agent", "agentruntimes/slow/tasks");
    await answering(gw, ns, "the agent", "agentruntimes/agent/tasks");
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });

  const content = (ws: string, path: string) =>
    `${url}${base}/workspaces/${ws}/files/content?path=${encodeURIComponent(path)}`;

  it("uploads, reads (whole and a range), lists, archives and deletes files", async () => {
    const put = await fetch(content("ws", "src/hello.txt"), {
      method: "PUT",
      headers: { ...auth(), "content-type": "text/plain" },
      body: "hello, workspace",
    });
    assert.equal(put.status, 201, await put.clone().text());
    assert.deepEqual(await put.json(), { path: "src/hello.txt", bytes: 16, created: true });
    // A JSON file stays bytes: the gateway never parses an upload.
    const json = await fetch(content("ws", "src/data.json"), {
      method: "PUT",
      headers: { ...auth(), "content-type": "application/json" },
      body: '{"a":1}',
    });
    assert.equal(json.status, 201);
    const again = await fetch(content("ws", "src/hello.txt"), {
      method: "PUT",
      headers: auth(),
      body: "HELLO",
    });
    assert.equal(again.status, 200);

    const read = await fetch(content("ws", "src/data.json"), { headers: auth() });
    assert.equal(read.status, 200);
    assert.equal(await read.text(), '{"a":1}');
    const part = await fetch(content("ws", "src/data.json"), { headers: { ...auth(), range: "bytes=1-4" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 1-4/7");
    assert.equal(await part.text(), '"a":');
    const beyond = await fetch(content("ws", "src/data.json"), {
      headers: { ...auth(), range: "bytes=50-" },
    });
    assert.equal(beyond.status, 416);
    assert.match(beyond.headers.get("content-type") ?? "", /^application\/problem\+json/);

    const listed = await gw.call("GET", `${base}/workspaces/ws/files?path=src`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      (listed.body.entries as { name: string; type: string; size: number }[]).map((e) => [
        e.name,
        e.type,
        e.size,
      ]),
      [
        ["data.json", "file", 7],
        ["hello.txt", "file", 5],
      ],
    );

    const tar = await fetch(`${url}${base}/workspaces/ws/files/archive?path=src`, { headers: auth() });
    assert.equal(tar.status, 200);
    assert.equal(tar.headers.get("content-type"), "application/x-tar");
    const dir = await mkdtemp(join(tmpdir(), "agentry-gw-tar-"));
    try {
      await writeFile(join(dir, "src.tar"), Buffer.from(await tar.arrayBuffer()));
      const x = spawnSync("tar", ["-xf", join(dir, "src.tar"), "-C", dir], { encoding: "utf8" });
      assert.equal(x.status, 0, x.stderr);
      assert.equal(await readFile(join(dir, "hello.txt"), "utf8"), "HELLO");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const del = await fetch(content("ws", "src/hello.txt"), { method: "DELETE", headers: auth() });
    assert.equal(del.status, 204);
    assert.equal((await fetch(content("ws", "src/hello.txt"), { headers: auth() })).status, 404);
  });

  it("refuses paths outside the workspace", async () => {
    for (const path of ["../x", "/etc/passwd", "a/../../b", "a//b", "./a"]) {
      const r = await fetch(content("ws", path), { headers: auth() });
      assert.equal(r.status, 400, path);
      assert.match(r.headers.get("content-type") ?? "", /^application\/problem\+json/);
    }
    // A symlink planted by a command leads nowhere: the sandbox checks real paths.
    const ln = await gw.call("POST", `${base}/workspaces/ws/exec`, {
      body: { command: ["ln", "-s", "/etc", "etc-link"] },
    });
    assert.equal(ln.body.exitCode, 0, JSON.stringify(ln.body));
    assert.equal((await gw.call("GET", `${base}/workspaces/ws/files?path=etc-link`)).status, 400);
    assert.equal((await fetch(content("ws", "etc-link/passwd"), { headers: auth() })).status, 400);
  });

  it("limits uploads, declared or streamed, and writes nothing too large", async () => {
    const declared = await fetch(content("ws", "big-declared"), {
      method: "PUT",
      headers: auth(),
      body: Buffer.alloc(MAX_UPLOAD + 1),
    });
    assert.equal(declared.status, 413);
    const chunks = (function* () {
      for (let i = 0; i < 8; i++) yield new Uint8Array(MAX_UPLOAD / 4);
    })();
    const streamed = await fetch(content("ws", "big-streamed"), {
      method: "PUT",
      headers: auth(),
      body: ReadableStream.from(chunks),
      duplex: "half",
    });
    assert.equal(streamed.status, 413);
    const listed = await gw.call("GET", `${base}/workspaces/ws/files`);
    const names = (listed.body.entries as { name: string }[]).map((e) => e.name);
    assert.ok(!names.includes("big-declared") && !names.includes("big-streamed"), names.join(","));
  });

  it("runs a command: JSON, NDJSON and SSE, with env, cwd and a timeout", async () => {
    const mk = await gw.call("POST", `${base}/workspaces/ws/exec`, {
      body: { command: ["mkdir", "-p", "sub"] },
    });
    assert.equal(mk.body.exitCode, 0);
    const once = await gw.call("POST", `${base}/workspaces/ws/exec`, {
      body: {
        command: ["sh", "-c", 'echo "hi $WHO in $(basename $PWD)"; echo oops >&2; exit 3'],
        env: { WHO: "you" },
        cwd: "sub",
      },
    });
    assert.equal(once.status, 200, JSON.stringify(once.body));
    assert.equal(once.body.exitCode, 3);
    assert.equal(once.body.stdout, "hi you in sub\n");
    assert.equal(once.body.stderr, "oops\n");

    for (const accept of ["application/x-ndjson", "text/event-stream"]) {
      const res = await fetch(`${url}${base}/workspaces/ws/exec`, {
        method: "POST",
        headers: { ...auth(), accept, "content-type": "application/json" },
        body: JSON.stringify({ command: ["sh", "-c", "echo one; echo two >&2; exit 4"] }),
      });
      assert.equal(res.status, 200);
      assert.ok(res.headers.get("content-type")?.startsWith(accept.split(",")[0]!));
      const records = parseRecords(await res.text(), accept === "text/event-stream");
      assert.equal(records[0]?.type, "started");
      assert.equal(records[0]?.execId, res.headers.get("x-exec-id"));
      const out = records
        .filter((r) => r.type === "stdout")
        .map((r) => r.data)
        .join("");
      const err = records
        .filter((r) => r.type === "stderr")
        .map((r) => r.data)
        .join("");
      assert.equal(out, "one\n");
      assert.equal(err, "two\n");
      assert.deepEqual([records.at(-1)?.type, records.at(-1)?.exitCode], ["exit", 4]);
    }

    const slow = await gw.call("POST", `${base}/workspaces/ws/exec`, {
      body: { command: ["sleep", "30"], timeoutSeconds: 1 },
    });
    assert.equal(slow.body.timedOut, true);
    const bad = await gw.call("POST", `${base}/workspaces/ws/exec`, { body: { command: [] } });
    assert.equal(bad.status, 400);
    const tooLong = await gw.call("POST", `${base}/workspaces/ws/exec`, {
      body: { command: ["true"], timeoutSeconds: 3600 },
    });
    assert.equal(tooLong.status, 400);
    assert.match(String(tooLong.body.detail), /timeoutSeconds/);
  });

  /** The sandbox's log says the command with this marker was cancelled. */
  const cancelledInSandbox = async (marker: string) => {
    const logs = join(pods.dir, "logs");
    const { readdir } = await import("node:fs/promises");
    for (const f of await readdir(logs)) {
      if (!f.startsWith(`${ns}_`)) continue;
      const text = await readFile(join(logs, f), "utf8");
      const done = text
        .split("\n")
        .filter((l) => l.includes('"command finished"'))
        .map((l) => JSON.parse(l) as { cancelled?: boolean; durationMs?: number; program?: string });
      if (done.some((d) => d.cancelled && d.program === marker)) return true;
    }
    return false;
  };

  it("cancels a streamed command when the client goes away: nothing keeps running", async () => {
    const script = "while true; do date +%s%N > beat; sleep 0.1; done";
    const stop = new AbortController();
    const res = await fetch(`${url}${base}/workspaces/ws/exec`, {
      method: "POST",
      headers: { ...auth(), accept: "application/x-ndjson", "content-type": "application/json" },
      body: JSON.stringify({ command: ["sh", "-c", script] }),
      signal: stop.signal,
    });
    assert.equal(res.status, 200);
    await readUntil(res, (r) => r.some((x) => x.type === "started"));
    await waitFor(
      "the command to beat",
      async () => (await fetch(content("ws", "beat"), { headers: auth() })).status === 200,
    );
    stop.abort();
    await waitFor("the sandbox to cancel the command", () => cancelledInSandbox("sh"), { timeoutMs: 30_000 });
    // And the beat stops: two reads a poll apart agree.
    let last = "";
    await waitFor(
      "the heartbeat file to stop changing",
      async () => {
        const now = await (await fetch(content("ws", "beat"), { headers: auth() })).text();
        const same = now === last;
        last = now;
        return same;
      },
      { timeoutMs: 20_000, intervalMs: 700 },
    );
  });

  it("cancels a streamed command by DELETE on another gateway replica; the stream ends with its exit", async () => {
    // A second replica that shares no memory with the one running the stream.
    const other = await replica();
    const res = await fetch(`${url}${base}/workspaces/ws/exec`, {
      method: "POST",
      headers: { ...auth(), accept: "application/x-ndjson", "content-type": "application/json" },
      body: JSON.stringify({ command: ["sleep", "300"] }),
    });
    assert.equal(res.status, 200);
    const execId = res.headers.get("x-exec-id")!;
    const nobody = await fetch(`${other.url}${base}/workspaces/ws/exec/${execId}`, {
      method: "DELETE",
      headers: auth("reader-token"),
    });
    assert.equal(nobody.status, 403);
    const stranger = await fetch(`${other.url}${base}/workspaces/ws/exec/${randomUUID()}`, {
      method: "DELETE",
      headers: auth(),
    });
    assert.equal(stranger.status, 404, await stranger.clone().text());
    const del = await fetch(`${other.url}${base}/workspaces/ws/exec/${execId}`, {
      method: "DELETE",
      headers: auth(),
    });
    assert.equal(del.status, 202, await del.clone().text());
    const records = parseRecords(await res.text(), false);
    assert.equal(records[0]?.type, "started");
    assert.deepEqual(
      [records.at(-1)?.type, records.at(-1)?.signal],
      ["exit", "SIGKILL"],
      JSON.stringify(records.at(-1)),
    );
    await waitFor("the sandbox to cancel sleep", () => cancelledInSandbox("sleep"), { timeoutMs: 30_000 });
    const gone = await fetch(`${url}${base}/workspaces/ws/exec/${execId}`, {
      method: "DELETE",
      headers: auth(),
    });
    assert.equal(gone.status, 404);
  });

  it("answers 409 with the reason for a suspended or unplaced workspace", async () => {
    const asleep = await gw.call("POST", `${base}/workspaces/asleep/exec`, { body: { command: ["true"] } });
    assert.equal(asleep.status, 409);
    assert.match(String(asleep.body.detail), /suspended/);
    const homeless = await gw.call("GET", `${base}/workspaces/homeless/files`);
    assert.equal(homeless.status, 409);
    assert.match(String(homeless.body.detail), /not placed/);
    assert.equal((await gw.call("GET", `${base}/workspaces/missing/files`)).status, 404);
  });

  it("sends a task to an agent and streams its answer; lists its recent tasks", async () => {
    const task = await gw.call("POST", `${base}/agentruntimes/agent/tasks`, { body: { input: "ping" } });
    assert.equal(task.status, 200, JSON.stringify(task.body));
    assert.match(String(task.body.output), /ping/);
    for (const accept of ["application/x-ndjson", "text/event-stream"]) {
      const res = await fetch(`${url}${base}/agentruntimes/agent/tasks`, {
        method: "POST",
        headers: { ...auth(), accept, "content-type": "application/json" },
        body: JSON.stringify({ input: `streamed ${accept}` }),
      });
      assert.equal(res.status, 200);
      const records = parseRecords(await res.text(), accept === "text/event-stream");
      // The answer as the model produces it (echo: word by word), then the whole result.
      assert.equal(records[0]?.type, "started");
      assert.equal(records.at(-1)?.type, "result");
      const pieces = records.filter((r) => r.type === "output").map((r) => r.data);
      assert.ok(pieces.length >= 2, JSON.stringify(records));
      assert.equal(pieces.join(""), `streamed ${accept}`);
    }
    const list = await gw.call("GET", `${base}/agentruntimes/agent/tasks`);
    assert.equal(list.status, 200);
    const items = list.body.items as { id: string; status: string; input: string }[];
    assert.equal(items[0]?.status, "succeeded");
    assert.ok(items.some((i) => i.id === task.body.id && i.input === "ping"));
  });

  it("cancels a streamed task when the client goes away", async () => {
    const stop = new AbortController();
    const res = await fetch(`${url}${base}/agentruntimes/slow/tasks`, {
      method: "POST",
      headers: { ...auth(), accept: "application/x-ndjson", "content-type": "application/json" },
      body: JSON.stringify({ input: "take your time" }),
      signal: stop.signal,
    });
    assert.equal(res.status, 200);
    const [started] = await readUntil(res, (r) => r.some((x) => x.type === "started"));
    stop.abort();
    // The model call (two minutes long) is aborted at once: the agent lists the task as failed.
    const item = await waitFor(
      "the agent to drop the task",
      async () => {
        const list = await gw.call("GET", `${base}/agentruntimes/slow/tasks`);
        const items = list.body.items as { id: string; status: string; code?: number }[];
        const it = items.find((i) => i.id === started?.id);
        return it?.status === "failed" ? it : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.equal(item.code, 499);
  });

  it("answers 503 with the readinessReason for an agent that is not Ready", async () => {
    const r = await gw.call("POST", `${base}/agentruntimes/resting/tasks`, { body: { input: "hi" } });
    assert.equal(r.status, 503);
    assert.equal(r.body.phase, "Suspended");
    assert.match(String(r.body.readinessReason), /suspended/);
    assert.match(String(r.body.detail), /not Ready/);
  });

  it("lists a pipeline's runs and streams a run pod's log through the apiserver, as the caller", async () => {
    const runs = await waitFor(
      "a run of the pipeline with its pod",
      async () => {
        const r = await gw.call("GET", `${base}/pipelines/once/runs`);
        const items = r.body.items as { name: string; phase: string; pods: { name: string }[] }[] | undefined;
        return items?.[0]?.pods.length ? items : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal(runs.length, 1);
    const marker = `run-log-${randomBytes(4).toString("hex")}`;
    await appendPodLog([marker]);
    const logs = await fetch(`${url}${base}/pipelines/once/runs/${runs[0]!.name}/logs`, {
      headers: auth("reader-token"),
    });
    assert.equal(logs.status, 200, await logs.clone().text());
    assert.equal(logs.headers.get("x-run-pod"), runs[0]!.pods[0]!.name);
    assert.match(await logs.text(), new RegExp(marker));
    const missing = await gw.call("GET", `${base}/pipelines/once/runs/no-such-run/logs`);
    assert.equal(missing.status, 404);
    // The log of a previous container that never was: nothing to read, not a bad request.
    const previous = await gw.call("GET", `${base}/pipelines/once/runs/${runs[0]!.name}/logs?previous=true`);
    assert.equal(previous.status, 404, JSON.stringify(previous.body));
  });

  it("refuses each verb to a caller RBAC does not grant it, naming the verb", async () => {
    const tries: [string, string, string, unknown, string, string][] = [
      // token, method, path, body, verb, subresource
      ["nobody-token", "GET", "/workspaces/ws/files", undefined, "get", "workspaces/files"],
      [
        "nobody-token",
        "GET",
        "/workspaces/ws/files/content?path=src/data.json",
        undefined,
        "get",
        "workspaces/files",
      ],
      ["nobody-token", "GET", "/workspaces/ws/files/archive", undefined, "get", "workspaces/files"],
      ["reader-token", "PUT", "/workspaces/ws/files/content?path=x", "data", "update", "workspaces/files"],
      [
        "reader-token",
        "DELETE",
        "/workspaces/ws/files/content?path=src",
        undefined,
        "update",
        "workspaces/files",
      ],
      ["reader-token", "POST", "/workspaces/ws/exec", { command: ["true"] }, "create", "workspaces/exec"],
      ["reader-token", "POST", "/agentruntimes/agent/tasks", { input: "x" }, "create", "agentruntimes/tasks"],
      ["nobody-token", "GET", "/agentruntimes/agent/tasks", undefined, "get", "agentruntimes/tasks"],
      ["nobody-token", "GET", "/pipelines/once/runs/any/logs", undefined, "get", "pipelines/logs"],
    ];
    for (const [token, method, path, body, verb, sub] of tries) {
      const r = await gw.call(method, `${base}${path}`, {
        token,
        ...(body !== undefined ? { body } : {}),
        ...(typeof body === "string" ? { headers: { "content-type": "application/octet-stream" } } : {}),
      });
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.verb, verb, path);
      assert.match(String(r.body.detail), new RegExp(`${verb} ${sub}`), path);
    }
    // The reader may read: its get verbs are granted.
    assert.equal(
      (await gw.call("GET", `${base}/workspaces/ws/files`, { token: "reader-token" })).status,
      200,
    );
    // Run lists are read as the caller: RBAC on the Pipeline and its Jobs decides.
    assert.equal(
      (await gw.call("GET", `${base}/pipelines/once/runs`, { token: "nobody-token" })).status,
      403,
    );
  });

  it("rate limits data-plane calls per caller", async () => {
    const limited = await startGateway(ctx, {
      tokens: { "reader-token": { user: "reader", groups: [], via: "token" } },
      limiter: new MemoryRateLimiter({ rate: 0.01, burst: 2 }),
      dataPlane: { addresses: new PodAddresses(pods.mapFile), signer: () => undefined },
    });
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (await limited.call("GET", `${base}/workspaces/ws/files`, { token: "reader-token" })).status,
      );
    // The signing key is withheld here: a call that gets through answers 503, the third 429.
    assert.deepEqual(statuses, [503, 503, 429]);
    const other = await limited.call("GET", `${base}/workspaces/ws/files`);
    assert.equal(other.status, 503, "another caller has its own bucket");
  });

  it("audits every data-plane call with who, what and the outcome", async () => {
    await gw.auditWritten();
    const rows = await gw.pool.query<{
      verb: string;
      actor: string;
      outcome: string;
      status: number;
      detail: string;
    }>("SELECT verb, actor, outcome, status, detail FROM audit_log WHERE namespace = $1", [ns]);
    const verbs = new Set(rows.rows.map((r) => r.verb));
    for (const v of [
      "files.list",
      "files.read",
      "files.write",
      "files.delete",
      "files.archive",
      "exec",
      "exec.cancel",
      "tasks.create",
      "tasks.list",
      "runs.list",
      "logs",
    ])
      assert.ok(verbs.has(v), `no audit record for ${v}: ${[...verbs].join(", ")}`);
    const exec = rows.rows.find((r) => r.verb === "exec" && r.detail?.includes("exitCode=3"));
    assert.ok(exec, "the exec's exit code is recorded");
    assert.equal(exec.outcome, "succeeded");
    const tooBig = rows.rows.find((r) => r.verb === "files.write" && r.status === 413);
    assert.equal(tooBig?.outcome, "failed");
  });
});
