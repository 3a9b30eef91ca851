import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../../test/harness/process.ts";
import { ProblemError } from "../../lib/http/problem.ts";
import { SAFE_PATH, type Confinement, type Isolation } from "./confine.ts";
import { CappedBuffer, ExecPool, outcome, runCommand, type ExecOptions, type OutputStream } from "./exec.ts";
import { FairSlots } from "./slots.ts";

/** True once the process is dead: gone, or a zombie waiting for an init to reap it. */
const gone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
};

let sleeps = 0;
/** A sleep duration no other process uses: it marks the processes of one test. */
const uniqueSleep = () => `${600 + (process.pid % 100)}.${Date.now() % 100_000}${sleeps++}`;

/** Live processes whose argv is exactly `sleep <marker>` (pids inside a PID namespace differ). */
function sleepers(marker: string): number {
  let n = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8") === `sleep\0${marker}\0` && !gone(Number(name))) n++;
    } catch {
      // gone
    }
  }
  return n;
}

describe("CappedBuffer", () => {
  const table: { limit: number; chunks: string[]; text: string; truncated: boolean }[] = [
    { limit: 5, chunks: ["ab", "cd"], text: "abcd", truncated: false },
    { limit: 4, chunks: ["ab", "cd"], text: "abcd", truncated: false },
    { limit: 3, chunks: ["ab", "cd"], text: "abc", truncated: true },
    { limit: 2, chunks: ["ab", "cd", "ef"], text: "ab", truncated: true },
    { limit: 1, chunks: ["", "abc"], text: "a", truncated: true },
  ];
  for (const { limit, chunks, text, truncated } of table)
    it(`keeps ${limit} bytes of ${JSON.stringify(chunks)}`, () => {
      const buffer = new CappedBuffer(limit);
      for (const c of chunks) buffer.push(Buffer.from(c));
      assert.equal(buffer.text(), text);
      assert.equal(buffer.truncated, truncated);
    });
});

describe("outcome", () => {
  const exited = { exitCode: 0, signal: null } as const;
  const killed = { exitCode: null, signal: "SIGKILL" } as const;
  const cases: { name: string; input: Parameters<typeof outcome>[0]; want: ReturnType<typeof outcome> }[] = [
    {
      name: "a command that exited on its own",
      input: { status: exited, timedOut: false, cancelled: false },
      want: { exitCode: 0, signal: null, timedOut: false },
    },
    {
      name: "the deadline's kill, the supervisor killed with its command",
      input: { status: undefined, exit: { code: null, signal: "SIGKILL" }, timedOut: true, cancelled: false },
      want: { exitCode: null, signal: "SIGKILL", timedOut: true },
    },
    {
      name: "the deadline's kill, reported by the supervisor before it was killed too",
      input: { status: killed, timedOut: true, cancelled: false },
      want: { exitCode: null, signal: "SIGKILL", timedOut: true },
    },
    {
      name: "an exit reported right after the deadline: the command finished first",
      input: { status: { exitCode: 3, signal: null }, timedOut: true, cancelled: false },
      want: { exitCode: 3, signal: null, timedOut: false },
    },
    {
      name: "a cancel",
      input: { status: undefined, timedOut: false, cancelled: true },
      want: { exitCode: null, signal: "SIGKILL", timedOut: false },
    },
    {
      name: "a supervisor that died without a report",
      input: { status: undefined, exit: { code: 125, signal: null }, timedOut: false, cancelled: false },
      want: { exitCode: 125, signal: null, timedOut: false },
    },
  ];
  for (const { name, input, want } of cases) it(name, () => assert.deepEqual(outcome(input), want));
});

const limits = { processes: 200, openFiles: 64, fileBytes: 1 << 20, cpuSeconds: 30 };
const asRoot = process.getuid?.() === 0;
// A PID namespace per command needs root; without it only the session form runs.
const isolations: Isolation[] = asRoot ? ["namespace", "session"] : ["session"];

for (const isolation of isolations)
  describe(`runCommand (${isolation})`, () => {
    let cwd: string;
    const confinement: Confinement = { isolation, limits, processesInUse: asRoot ? 0 : 1000 };
    before(async () => {
      cwd = await mkdtemp(join(tmpdir(), "agentry-exec-"));
    });
    after(() => rm(cwd, { recursive: true, force: true }));
    const run = (command: string[], options: Partial<ExecOptions> = {}) =>
      runCommand({ command, cwd, timeoutMs: 30_000, maxOutputBytes: 1 << 20, confinement, ...options });

    it("passes argv to the program without a shell", async () => {
      const hostile = [
        "a; touch pwned",
        "$(touch pwned2)",
        "`touch pwned3`",
        "*",
        "&& rm -rf /",
        "'\"",
        "\n",
      ];
      const result = await run(["printf", "%s|", ...hostile]);
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, hostile.map((a) => `${a}|`).join(""));
      for (const f of ["pwned", "pwned2", "pwned3"]) assert.equal(existsSync(join(cwd, f)), false);
    });

    it("runs in the workspace with a clean environment: the minimal one plus the caller's", async () => {
      process.env.AGENTRY_EXEC_TEST_SECRET = "must not leak";
      try {
        const result = await run(["env"], { env: { FOO: "bar baz" } });
        const env = Object.fromEntries(
          result.stdout
            .trim()
            .split("\n")
            .map((l) => l.split(/=(.*)/s).slice(0, 2)),
        );
        assert.deepEqual(env, { PATH: SAFE_PATH, HOME: cwd, LANG: "C.UTF-8", FOO: "bar baz" });
        assert.equal((await run(["pwd"])).stdout.trim(), cwd);
      } finally {
        delete process.env.AGENTRY_EXEC_TEST_SECRET;
      }
    });

    it("reports exit codes, stderr and stdin", async () => {
      const result = await run(["sh", "-c", "cat; echo oops >&2; exit 3"], { stdin: "hello" });
      assert.deepEqual(
        { exitCode: result.exitCode, signal: result.signal, stdout: result.stdout, stderr: result.stderr },
        { exitCode: 3, signal: null, stdout: "hello", stderr: "oops\n" },
      );
      assert.equal(result.timedOut, false);
    });

    it("answers 127 for a program that does not exist", async () => {
      const result = await run(["no-such-program-agentry"]);
      assert.equal(result.exitCode, 127);
      assert.match(result.stderr, /no-such-program-agentry: command not found/);
    });

    it("kills the whole tree at the timeout, also what left the process group and session", async () => {
      const marker = uniqueSleep();
      const script = [
        `sleep ${marker} &`,
        `setsid sh -c 'sleep ${marker} & sleep ${marker}' &`,
        `(sh -c 'sleep ${marker} &' &)`,
        `sleep ${marker}`,
      ].join("\n");
      const running = run(["sh", "-c", script], { timeoutMs: 3000 });
      await waitFor("every sleep to start", () => sleepers(marker) === 5);
      const result = await running;
      assert.equal(result.timedOut, true);
      assert.equal(result.signal, "SIGKILL");
      assert.equal(result.exitCode, null);
      await waitFor("every sleep to be killed", () => sleepers(marker) === 0, { timeoutMs: 10_000 });
    });

    it("kills the whole tree when cancelled", async () => {
      const marker = uniqueSleep();
      const cancel = new AbortController();
      const running = run(["sh", "-c", `setsid sleep ${marker} & wait`], { signal: cancel.signal });
      await waitFor("the command to start", () => sleepers(marker) === 1);
      cancel.abort();
      const result = await running;
      assert.deepEqual([result.signal, result.timedOut, result.exitCode], ["SIGKILL", false, null]);
      await waitFor("the setsid sleep to be killed", () => sleepers(marker) === 0, { timeoutMs: 10_000 });
    });

    it("reports the signal that ended the command", async () => {
      const result = await run(["sh", "-c", "kill -SEGV $$"]);
      assert.deepEqual([result.exitCode, result.signal], [null, "SIGSEGV"]);
    });

    it("applies the limits: processes, open files, file size, CPU time", async () => {
      const result = await run([
        "sh",
        "-c",
        "ulimit -n; ulimit -f; ulimit -t; head -c 2000000 /dev/zero > big",
      ]);
      const [files, blocks, cpu] = result.stdout.trim().split("\n");
      assert.deepEqual([files, Number(blocks) * 512, cpu], ["64", 1 << 20, "30"]);
      assert.equal((await stat(join(cwd, "big"))).size, 1 << 20);
      assert.notEqual(result.exitCode, 0);
      const procs = await run(["sh", "-c", "cat /proc/self/limits | grep 'Max processes'"]);
      assert.match(
        procs.stdout,
        new RegExp(`Max processes\\s+${200 + (confinement.processesInUse ?? 0)}\\s`),
      );
    });

    it("streams output to a sink, pausing the command while the sink is full", async () => {
      const records: [OutputStream, string][] = [];
      let full = true;
      let release: () => void = () => undefined;
      const result = await run(["sh", "-c", "echo one; echo two >&2; printf '\\303'; printf '\\251'; echo"], {
        sink: {
          write: (stream, text) => {
            records.push([stream, text]);
            const wasFull = full;
            full = false;
            return !wasFull;
          },
          drained: () =>
            new Promise<void>((resolve) => {
              release = resolve;
              setTimeout(() => release(), 50);
            }),
        },
      });
      assert.equal(result.exitCode, 0);
      assert.deepEqual([result.stdout, result.stderr], ["", ""]);
      const text = (stream: OutputStream) =>
        records
          .filter(([s]) => s === stream)
          .map(([, t]) => t)
          .join("");
      assert.equal(text("stdout"), "one\né\n"); // a character split across writes arrives whole
      assert.equal(text("stderr"), "two\n");
    });

    it("does not wait for background processes the command left running, and kills them", async () => {
      const marker = uniqueSleep();
      const result = await run(["sh", "-c", `sleep ${marker} & setsid sleep ${marker} & echo done`]);
      assert.equal(result.stdout, "done\n");
      assert.equal(result.timedOut, false);
      await waitFor("the left-behind sleeps to be killed", () => sleepers(marker) === 0, {
        timeoutMs: 10_000,
      });
    });

    it("caps each stream at maxOutputBytes and says so", async () => {
      const result = await run(["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; echo err >&2"], {
        maxOutputBytes: 1000,
      });
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, "a".repeat(1000));
      assert.equal(result.stderr, "err\n");
      assert.equal(result.truncated, true);
      assert.equal((await run(["echo", "short"], { maxOutputBytes: 1000 })).truncated, false);
    });
  });

describe("ExecPool", () => {
  it("keeps to the workspace's share (429 beyond its queue) and can abort a workspace's commands", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "agentry-pool-"));
    try {
      const slots = new FairSlots({ total: 2, perKey: 1, queuePerKey: 0, maxWaitMs: 1000 });
      const pool = new ExecPool({ slots, isolation: "session", limits });
      const options = { cwd, timeoutMs: 60_000, maxOutputBytes: 1000 };
      const running = pool.run("w1", undefined, { command: ["sleep", "60"], ...options });
      await waitFor("the command to hold a slot", () => slots.active("w1") === 1);
      await assert.rejects(
        pool.run("w1", undefined, { command: ["true"], ...options }),
        (err: unknown) => err instanceof ProblemError && err.status === 429,
      );
      assert.equal((await pool.run("w2", undefined, { command: ["true"], ...options })).exitCode, 0);
      pool.abort("w2");
      assert.equal(pool.active, 1);
      pool.abort("w1");
      const result = await running;
      assert.equal(result.signal, "SIGKILL");
      assert.equal(pool.active, 0);
      assert.equal(slots.active(), 0);
      assert.equal((await pool.run("w1", undefined, { command: ["true"], ...options })).exitCode, 0);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
