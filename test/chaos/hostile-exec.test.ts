// Issue 17, item 4: confined exec. The real sandbox runtime (runtimes/sandbox/main.ts) as a
// process on loopback, and commands that try to get out: read the runtime's environment
// (/proc/1/environ, /proc/<runtime>/environ, every /proc/*/environ), another workspace's
// files and processes, a file only the runtime may read, outlive their timeout or their
// client with `setsid` and double forks, fork without limit, burn CPU, fill the disk. Each
// fails, and the runtime keeps serving the other workspaces meanwhile.
//
// As root (CI) the runtime runs each command in a PID namespace of its own as the
// workspace's own user: everything above is asserted. Not as root (the default sandbox Pod),
// commands share the runtime's uid; the second suite runs the runtime so, as process 1 of a
// PID namespace like in a Pod, and asserts what still holds there (see README.md).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import type { ExecRequest, ExecResult } from "../../contracts/sandbox.ts";
import { killTree } from "../../runtimes/sandbox/proctree.ts";
import { repoRoot } from "../harness/paths.ts";
import { waitFor } from "../harness/process.ts";
import { testTrust } from "../harness/tokens.ts";

const asRoot = process.getuid?.() === 0;
const SECRET = `hostile-secret-${randomBytes(12).toString("hex")}`;
/** A uid range of this run's own, so that concurrent runs on one machine do not meet. */
const EXEC_UID = 200_000 + (process.pid % 1000) * 100;
const FILE_LIMIT = 8 * 1024 * 1024;

interface Runtime {
  child: ChildProcess;
  dir: string;
  root: string;
  api: SandboxClient;
  logs: Record<string, unknown>[];
  output: string[];
}

/**
 * Starts the sandbox runtime with a secret in its environment. `prefix` wraps the node
 * command (e.g. to start it as another user in a PID namespace).
 */
async function startRuntime(args: string[], prefix: string[] = [], owner?: number): Promise<Runtime> {
  const dir = await mkdtemp(join(tmpdir(), "agentry-hostile-"));
  await chmod(dir, 0o711); // commands reach their HOME by absolute path
  const root = join(dir, "ws");
  // The key its calls are signed with (public half readable by whoever the runtime runs as).
  const trustDir = join(dir, "trust");
  await mkdir(trustDir, { mode: 0o755 });
  const trust = await testTrust("agentry-operator", trustDir);
  if (owner !== undefined) {
    await mkdir(root);
    await chown(root, owner, owner);
  }
  const argv = [
    ...prefix,
    process.execPath,
    "--import",
    "tsx",
    join(repoRoot, "runtimes/sandbox/main.ts"),
    "--listen=127.0.0.1:0",
    "--metrics-addr=127.0.0.1:0",
    `--root=${root}`,
    `--trust-dir=${trustDir}`,
    "--pod-namespace=chaos",
    "--pod-name=hostile",
    ...args,
  ];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      AGENTRY_HOSTILE_SECRET: SECRET, // stands for every Secret a fleet's template.env passes
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const output: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    output.push(line);
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not ours
    }
  });
  createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
  const port = await waitFor(
    "the sandbox runtime to listen",
    () => {
      if (child.exitCode !== null) throw new Error(`sandbox exited ${child.exitCode}: ${output.join("\n")}`);
      const line = logs.find((l) => l.message === "sandbox listening");
      return line ? Number(line.port) : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const api = new SandboxClient({
    baseUrl: `http://127.0.0.1:${port}`,
    token: () => trust.token("pod:chaos/hostile"),
  });
  return { child, dir, root, api, logs, output };
}

async function stopRuntime(rt: Runtime | undefined): Promise<void> {
  if (!rt) return;
  if (rt.child.pid !== undefined && rt.child.exitCode === null) {
    const exited = new Promise((resolve) => rt.child.once("exit", resolve));
    await killTree({ root: rt.child.pid });
    await exited;
  }
  await rm(rt.dir, { recursive: true, force: true });
}

/** Live processes (not zombies) owned by `uid`, seen from outside any namespace. */
function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === uid && !/^State:\s+Z/m.test(status))
        pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Live processes whose argv contains `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, "utf8").includes(marker)) continue;
      if (!/^State:\s+Z/m.test(readFileSync(`/proc/${name}/status`, "utf8"))) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * A fork bomb that stays at its process limit: every copy keeps forking. Its first process
 * starts one copy and becomes a sleep, so the command runs to its deadline: a bash that gives
 * up on a failed fork ends (its retries stop when a child's death wakes them), and a bomb
 * whose first process did that would end before its deadline, once in a while.
 */
const FORK_BOMB = "b() { while :; do b & sleep 0.05; done; }; b & exec sleep 600";

/** bash: unlike dash, it goes on after a failed fork (it retries), so the bomb keeps pressing. */
const forkBomb = (timeoutSeconds: number): ExecRequest => ({
  command: ["bash", "-c", FORK_BOMB],
  timeoutSeconds,
});

const sh = (script: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  command: ["sh", "-c", script],
  ...extra,
});

/** The output of a command, both streams, for "the secret is not in it" checks. */
const seen = (r: ExecResult) => `${r.stdout}\n${r.stderr}`;

/** A file that grows while a process writes to it: waits until it stopped for a second. */
async function stopsGrowing(path: string): Promise<void> {
  const size = async () => (existsSync(path) ? (await stat(path)).size : 0);
  let last = await size();
  await waitFor(
    `${path} to stop growing`,
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = await size();
      const still = now === last;
      last = now;
      return still;
    },
    { timeoutMs: 20_000 },
  );
}

/** A script that leaves its tree in every usual way and then writes a heartbeat forever. */
const escapist = (marker: string) =>
  [
    `setsid sh -c 'while :; do echo beat >> beat-${marker}; sleep 0.1; done' &`,
    `(setsid sh -c 'sleep 1000; : ${marker}' &)`,
    `(sh -c 'sleep 1000; : ${marker}' &)`,
    "echo started",
    "sleep 1000",
  ].join("\n");

describe(
  "hostile commands, runtime as root (each workspace its own user and PID namespace)",
  { skip: !asRoot && "needs root" },
  () => {
    let rt: Runtime;
    let keyDir: string;
    before(async () => {
      rt = await startRuntime([
        `--exec-uid=${EXEC_UID}`,
        "--exec-max-processes=64",
        `--exec-max-file-bytes=${FILE_LIMIT}`,
        "--exec-max-cpu-seconds=2",
        "--max-exec=60s",
        "--max-concurrent-exec=6",
      ]);
      // A file only the runtime may read, like a mounted key.
      keyDir = join(rt.dir, "key");
      await mkdir(keyDir, { mode: 0o700 });
      await writeFile(join(keyDir, "key.pem"), SECRET, { mode: 0o600 });
      for (const id of ["team-a.alice", "team-a.bob", "team-a.bomb", "team-a.disk"])
        await rt.api.createWorkspace(id);
      await rt.api.writeFile("team-a.bob", "secret.txt", SECRET);
    });
    after(() => stopRuntime(rt));

    const uidOf = async (ws: string) =>
      Number((await rt.api.exec(ws, { command: ["id", "-u"] })).stdout.trim());

    it("runs commands as the workspace's own user, with nothing of the runtime's environment", async () => {
      const r = await rt.api.exec("team-a.alice", { command: ["env"] });
      assert.deepEqual(
        r.stdout
          .trim()
          .split("\n")
          .map((l) => l.split("=")[0])
          .sort(),
        ["HOME", "LANG", "PATH"],
      );
      assert.ok((await uidOf("team-a.alice")) >= EXEC_UID);
      assert.notEqual(await uidOf("team-a.alice"), await uidOf("team-a.bob"));
    });

    it("cannot read the runtime's environment through /proc", async () => {
      const pid = rt.child.pid!;
      const r = await rt.api.exec(
        "team-a.alice",
        sh(`cat /proc/1/environ; cat /proc/${pid}/environ; cat /proc/*/environ; ps ax 2>&1; true`),
      );
      assert.doesNotMatch(seen(r), new RegExp(SECRET));
      // Only the command's own processes are there to see: its PID namespace is new.
      const pids = (await rt.api.exec("team-a.alice", sh("cd /proc && echo [0-9]*"))).stdout
        .trim()
        .split(" ");
      assert.ok(pids.length < 10 && pids.every((p) => Number(p) < 10), `pids seen: ${pids.join(" ")}`);
    });

    it("cannot read a file only the runtime may read", async () => {
      const r = await rt.api.exec("team-a.alice", { command: ["cat", join(keyDir, "key.pem")] });
      assert.notEqual(r.exitCode, 0);
      assert.doesNotMatch(seen(r), new RegExp(SECRET));
    });

    it("cannot read, list or write another workspace's files, by path, symlink or cwd", async () => {
      const bob = join(rt.root, "team-a.bob");
      const r = await rt.api.exec(
        "team-a.alice",
        sh(
          [
            `cat ../team-a.bob/secret.txt ${bob}/secret.txt`,
            `ls ${bob}`,
            `echo pwned > ${bob}/pwned`,
            `ln -s ${bob} link; cat link/secret.txt`,
            `find ${rt.root} -name secret.txt -exec cat {} +`,
            "true",
          ].join("; "),
        ),
      );
      assert.doesNotMatch(seen(r), new RegExp(SECRET));
      assert.match(r.stderr, /Permission denied/);
      assert.equal(existsSync(join(bob, "pwned")), false);
      await assert.rejects(rt.api.readFile("team-a.alice", "link/secret.txt"), /outside the workspace/);
      await assert.rejects(
        rt.api.exec("team-a.alice", { command: ["cat", "secret.txt"], cwd: "link" }),
        /outside/,
      );
      await assert.rejects(rt.api.exec("team-a.alice", { command: ["ls"], cwd: "../team-a.bob" }), /"\.\."/);
    });

    it("cannot see another workspace's running command or its environment", async () => {
      const marker = `31.${Date.now() % 100_000}`;
      const bobs = rt.api.exec("team-a.bob", {
        command: ["sleep", marker],
        env: { BOB_SECRET: SECRET },
        timeoutSeconds: 20,
      });
      await waitFor("bob's command to run", () => processesWith(`sleep\u0000${marker}`).length > 0);
      const r = await rt.api.exec("team-a.alice", sh("cat /proc/*/environ /proc/*/cmdline; ps ax; true"));
      assert.doesNotMatch(seen(r), new RegExp(SECRET));
      assert.ok(!seen(r).includes(marker), "alice saw bob's command");
      await rt.api.deleteWorkspace("team-a.bob"); // also stops its command
      assert.equal((await bobs).signal, "SIGKILL");
      await rt.api.createWorkspace("team-a.bob");
    });

    it("cannot outlive its timeout with setsid, a double fork or a session of its own", async () => {
      const marker = `t${Date.now()}`;
      const uid = await uidOf("team-a.alice");
      const running = rt.api.exec("team-a.alice", sh(escapist(marker), { timeoutSeconds: 3 }));
      await waitFor("the escapees to run", () => processesWith(marker).length >= 3);
      const r = await running;
      assert.deepEqual([r.timedOut, r.signal, r.stdout], [true, "SIGKILL", "started\n"]);
      await stopsGrowing(join(rt.root, "team-a.alice", `beat-${marker}`));
      await waitFor(
        "nothing of the command to be left",
        () => processesWith(marker).length === 0 && processesOf(uid).length === 0,
      );
    });

    it("cannot outlive its client: closing a streamed exec kills the whole tree", async () => {
      const marker = `c${Date.now()}`;
      const uid = await uidOf("team-a.alice");
      for await (const record of rt.api.execStream("team-a.alice", sh(escapist(marker))))
        if (record.type === "stdout" && record.data.includes("started")) {
          await waitFor("the escapees to run", () => processesWith(marker).length >= 3);
          break;
        }
      await stopsGrowing(join(rt.root, "team-a.alice", `beat-${marker}`));
      await waitFor(
        "nothing of the command to be left",
        () => processesWith(marker).length === 0 && processesOf(uid).length === 0,
      );
      await waitFor("the runtime to log the cancel", () =>
        rt.logs.some(
          (l) => l.message === "command finished" && l.workspace === "team-a.alice" && l.cancelled === true,
        ),
      );
    });

    it("contains a fork bomb while the other workspaces keep being served", async () => {
      const uid = await uidOf("team-a.bomb");
      const bomb = rt.api.exec("team-a.bomb", forkBomb(8));
      await waitFor("the bomb to fork", () => processesOf(uid).length > 10);
      const peak: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const ok = await rt.api.exec("team-a.alice", { command: ["echo", `still here ${i}`] });
        assert.equal(ok.stdout, `still here ${i}\n`);
        assert.ok(performance.now() - t0 < 10_000, "another workspace waited more than 10 s");
        peak.push(processesOf(uid).length);
      }
      assert.ok(Math.max(...peak) <= 64, `the bomb's user had ${Math.max(...peak)} processes (limit 64)`);
      assert.ok(await rt.api.healthy());
      const result = await bomb;
      assert.equal(result.timedOut, true, JSON.stringify({ ...result, stderr: result.stderr.slice(-300) }));
      await waitFor("every process of the bomb to be gone", () => processesOf(uid).length === 0);
      assert.equal((await rt.api.exec("team-a.bomb", { command: ["echo", "after"] })).stdout, "after\n");
    });

    it("stops a CPU burner at its CPU time limit and a disk filler at its file size limit", async () => {
      const burner = await rt.api.exec("team-a.disk", sh("while :; do :; done", { timeoutSeconds: 60 }));
      assert.equal(burner.timedOut, false);
      assert.ok(["SIGXCPU", "SIGKILL"].includes(burner.signal ?? ""), JSON.stringify(burner));
      const filler = await rt.api.exec("team-a.disk", sh("head -c 100000000 /dev/zero > big"));
      assert.ok(filler.exitCode !== 0, JSON.stringify(filler));
      assert.equal((await stat(join(rt.root, "team-a.disk", "big"))).size, FILE_LIMIT);
      assert.equal((await rt.api.exec("team-a.alice", { command: ["echo", "fine"] })).stdout, "fine\n");
      await rt.api.deleteWorkspace("team-a.disk");
      assert.equal(existsSync(join(rt.root, "team-a.disk")), false);
    });

    it("never logs the secret or command output", () => {
      assert.doesNotMatch(rt.output.join("\n"), new RegExp(SECRET));
    });
  },
);

/** The runtime's uid in the second suite: one of this run's own (see EXEC_UID). */
const NON_ROOT = 60_000 + (process.pid % 1000);

describe(
  "hostile commands, runtime not root (as in the default sandbox Pod: process 1, one uid)",
  { skip: !asRoot && "needs root to start the runtime as another user" },
  () => {
    let rt: Runtime;
    before(async () => {
      rt = await startRuntime(
        ["--exec-max-processes=64", "--exec-max-cpu-seconds=5", "--max-exec=60s"],
        [
          "unshare",
          "--pid",
          "--fork",
          "--mount-proc",
          "--",
          "setpriv",
          `--reuid=${NON_ROOT}`,
          `--regid=${NON_ROOT}`,
          "--clear-groups",
          "--",
        ],
        NON_ROOT,
      );
      for (const id of ["team-b.one", "team-b.two"]) await rt.api.createWorkspace(id);
    });
    after(() => stopRuntime(rt));

    it("confines commands with a subreaper in a session of their own, under the runtime's uid", () => {
      const listening = rt.logs.find((l) => l.message === "sandbox listening") as {
        exec?: { isolation?: string };
      };
      assert.equal(listening.exec?.isolation, "session");
    });

    it("cannot outlive its timeout with setsid or a double fork", async () => {
      const marker = `n${Date.now()}`;
      const running = rt.api.exec("team-b.one", sh(escapist(marker), { timeoutSeconds: 3 }));
      await waitFor("the escapees to run", () => processesWith(marker).length >= 3);
      const r = await running;
      assert.deepEqual([r.timedOut, r.stdout], [true, "started\n"]);
      await stopsGrowing(join(rt.root, "team-b.one", `beat-${marker}`));
      await waitFor("nothing of the command to be left", () => processesWith(marker).length === 0);
    });

    it("cannot outlive its timeout by killing its supervisor first (the runtime, as process 1, adopts and kills)", async () => {
      const marker = `s${Date.now()}`;
      const script = [
        `setsid sh -c 'while :; do echo beat >> beat-${marker}; sleep 0.1; done' &`,
        "sleep 0.3",
        "kill -9 $PPID",
        "sleep 1000",
      ].join("\n");
      await rt.api.exec("team-b.one", sh(script, { timeoutSeconds: 5 }));
      await stopsGrowing(join(rt.root, "team-b.one", `beat-${marker}`));
      await waitFor("nothing of the command to be left", () => processesWith(marker).length === 0);
    });

    it("contains a fork bomb while the other workspace keeps being served", async () => {
      const bomb = rt.api.exec("team-b.two", forkBomb(6));
      await waitFor("the bomb to fork", () => processesOf(NON_ROOT).length > 20);
      const ok = await rt.api.exec("team-b.one", { command: ["echo", "still here"] });
      assert.equal(ok.stdout, "still here\n");
      const result = await bomb;
      assert.equal(result.timedOut, true, JSON.stringify({ ...result, stderr: result.stderr.slice(-300) }));
      assert.ok(await rt.api.healthy());
      // What is left of the uid is the runtime itself.
      await waitFor("the bomb to be gone", () => processesOf(NON_ROOT).length <= 1);
    });
  },
);
