// The CLI's data-plane commands as a user runs them: subprocesses against the live gateway,
// with real sandbox and agent runtime processes behind kwok's pods (test/gateway/
// dataplane-env.ts). exec streams and exits with the remote exit code, Ctrl-C cancels the
// remote command (no process of it is left), cp round-trips files and directories, task
// prints the echo agent's answer, logs prints a run pod's log.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { appendPodLog } from "../harness/controlplane.ts";
import { createCR, waitFor } from "../harness/cluster.ts";
import { answering, startDataPlane } from "../gateway/dataplane-env.ts";
import { ADMIN_TOKEN, type Gateway } from "../gateway/harness.ts";
import { agentry, startAgentry } from "./harness.ts";

type Cleanup = () => Promise<void>;

/** Processes on this machine whose command line holds `marker` (the sandbox runs real processes). */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) found.push(Number(pid));
  }
  return found;
}

/** Every file under a directory with its bytes, by relative path. */
async function tree(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await tree(join(dir, e.name), rel));
    else out[rel] = (await readFile(join(dir, e.name))).toString("base64");
  }
  return out;
}

describe("agentry exec, cp, task and logs against the live gateway", () => {
  const cleanups: Cleanup[] = [];
  const ctx = { name: "cli data plane", after: (fn: Cleanup) => void cleanups.push(fn) };
  let ns: string;
  let gw: Gateway;
  let env: Record<string, string>;
  let local: string;

  before(async () => {
    ({ ns, gw } = await startDataPlane(ctx));
    env = { AGENTRY_GATEWAY_URL: gw.url, AGENTRY_TOKEN: ADMIN_TOKEN, AGENTRY_NAMESPACE: ns };
    local = await mkdtemp(join(tmpdir(), "agentry-cli-dp-"));
    cleanups.push(() => rm(local, { recursive: true, force: true }));
    await createCR(ns, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
      samplingInterval: "250ms",
    });
    await createCR(ns, "Workspace", "ws", { fleetRef: { name: "fleet" } });
    await createCR(ns, "AgentRuntime", "agent", { image: "registry.example/agent:1" });
    await createCR(ns, "Pipeline", "once", {
      schedule: "",
      steps: [{ name: "s", image: "registry.example/step:1", command: ["true"] }],
    });
    await answering(gw, ns, "the workspace", "workspaces/ws/files");
    await answering(gw, ns, "the agent", "agentruntimes/agent/tasks");
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });

  it("exec prints the command's output and exits with its exit code", async () => {
    const r = await agentry(["exec", "ws", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"], env);
    assert.equal(r.code, 3, r.err);
    assert.equal(r.out, "hi\n");
    assert.equal(r.err, "oops\n");

    assert.equal((await agentry(["exec", "ws", "--", "mkdir", "-p", "sub"], env)).code, 0);
    const withEnv = await agentry(
      ["exec", "-e", "WHO=you", "-w", "sub", "ws", "--", "sh", "-c", 'echo "$WHO in $(basename "$PWD")"'],
      env,
    );
    assert.equal(withEnv.code, 0, withEnv.err);
    assert.equal(withEnv.out, "you in sub\n");

    const timedOut = await agentry(["exec", "--timeout", "1s", "ws", "--", "sleep", "30"], env);
    assert.equal(timedOut.code, 124, timedOut.err);
    assert.match(timedOut.err, /timed out/);

    const missing = await agentry(["exec", "no-such-ws", "--", "true"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /Error from the gateway \(404\)/);
    assert.equal((await agentry(["exec", "ws", "--", "true", "-e"], env)).code, 0);
    assert.equal((await agentry(["exec", "-e", "novalue", "ws", "--", "true"], env)).code, 2);
  });

  it("exec streams output as the command writes it", async () => {
    const gate = `gate-${randomBytes(4).toString("hex")}`;
    const cli = startAgentry(
      ["exec", "ws", "--", "sh", "-c", `echo first; while [ ! -f ${gate} ]; do sleep 0.1; done; echo second`],
      env,
    );
    // "first" arrives while the command still waits for the gate.
    await waitFor("the first line", () => cli.output.out === "first\n" || undefined, { timeoutMs: 30_000 });
    const opened = await agentry(["exec", "ws", "--", "touch", gate], env);
    assert.equal(opened.code, 0, opened.err);
    const r = await cli.done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "first\nsecond\n");
  });

  it("exec: Ctrl-C cancels the remote command and nothing of it keeps running", async () => {
    const marker = `beat-${randomBytes(4).toString("hex")}`;
    const cli = startAgentry(
      [
        "exec",
        "ws",
        "--",
        "sh",
        "-c",
        `echo ${marker}; while true; do date +%s%N > ${marker}; sleep 0.1; done`,
      ],
      env,
    );
    await waitFor("the command to start", () => cli.output.out.includes(marker) || undefined, {
      timeoutMs: 30_000,
    });
    // The shell runs as a real process (its command line holds the marker), besides the CLI.
    const running = (await processesWith(marker)).filter((p) => p !== cli.child.pid);
    assert.ok(running.length > 0, "the remote shell runs");
    cli.child.kill("SIGINT");
    const r = await cli.done;
    assert.equal(r.code, 130, r.err);
    await waitFor(
      "every process of the command to be gone",
      async () => (await processesWith(marker)).length === 0,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
  });

  it("cp copies files and directories both ways", async () => {
    const bytes = randomBytes(300_000);
    await writeFile(join(local, "blob.bin"), bytes);
    const up = await agentry(["cp", join(local, "blob.bin"), "ws:data/"], env);
    assert.equal(up.code, 0, up.err);
    const down = await agentry(["cp", "ws:data/blob.bin", join(local, "back.bin")], env);
    assert.equal(down.code, 0, down.err);
    assert.ok((await readFile(join(local, "back.bin"))).equals(bytes), "the bytes came back unchanged");

    // A local directory up, file by file; the workspace's directory down, as its tar, extracted.
    const src = join(local, "tree");
    await mkdir(join(src, "sub", "deep"), { recursive: true });
    await writeFile(join(src, "a.txt"), "alpha\n");
    await writeFile(join(src, "sub", "b.txt"), "beta\n");
    await writeFile(join(src, "sub", "deep", "c.bin"), randomBytes(70_000));
    const dirUp = await agentry(["cp", src, "ws:up"], env);
    assert.equal(dirUp.code, 0, dirUp.err);
    const dirDown = await agentry(["cp", "ws:up", join(local, "down")], env);
    assert.equal(dirDown.code, 0, dirDown.err);
    assert.deepEqual(await tree(join(local, "down")), await tree(src));
    // Into an existing directory: under the source's own name.
    const into = await agentry(["cp", "ws:up/sub", local], env);
    assert.equal(into.code, 0, into.err);
    assert.equal(await readFile(join(local, "sub", "b.txt"), "utf8"), "beta\n");

    const stdout = await agentry(["cp", `${ns}/ws:up/a.txt`, "-"], {
      ...env,
      AGENTRY_NAMESPACE: "default",
    });
    assert.equal(stdout.code, 0, stdout.err);
    assert.equal(stdout.out, "alpha\n");
    const stdin = await agentry(["cp", "-", "ws:from-stdin.txt"], env, "piped\n");
    assert.equal(stdin.code, 0, stdin.err);
    assert.equal((await agentry(["exec", "ws", "--", "cat", "from-stdin.txt"], env)).out, "piped\n");

    const missing = await agentry(["cp", "ws:nope.txt", join(local, "x")], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\(404\).*nope\.txt/);
    const outside = await agentry(["cp", join(local, "blob.bin"), "ws:../escape"], env);
    assert.equal(outside.code, 1);
    assert.match(outside.err, /\(400\)/);
    assert.equal((await agentry(["cp", "a", "b"], env)).code, 2);
  });

  it("task prints the agent's answer", async () => {
    const r = await agentry(["task", "agent", "hello there, agent"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "hello there, agent\n");
    const json = await agentry(["task", "agent", "-o", "json", "-"], env, "from stdin");
    assert.equal(json.code, 0, json.err);
    const result = JSON.parse(json.out) as { id: string; output: string };
    assert.equal(result.output, "from stdin");
    assert.ok(result.id);
    const missing = await agentry(["task", "no-such-agent", "x"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\(404\)/);
  });

  it("logs prints the latest run's pod log, or a named run's", async () => {
    const run = await waitFor(
      "a run of the pipeline with its pod",
      async () => {
        const r = await gw.call("GET", `/v1/namespaces/${ns}/pipelines/once/runs`);
        const items = r.body.items as { name: string; pods: unknown[] }[] | undefined;
        return items?.[0]?.pods.length ? items[0].name : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const marker = `cli-log-${randomBytes(4).toString("hex")}`;
    await appendPodLog([marker]);
    const latest = await agentry(["logs", "once"], env);
    assert.equal(latest.code, 0, latest.err);
    assert.match(latest.out, new RegExp(marker));
    const named = await agentry(["logs", "once", "--run", run, "--tail", "1"], env);
    assert.equal(named.code, 0, named.err);
    assert.match(named.out, new RegExp(marker));
    const missing = await agentry(["logs", "once", "--run", "no-such-run"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /\(404\)/);

    const completion = await agentry(["completion", "bash"], {});
    assert.match(completion.out, /exec cp task logs/);
  });
});
