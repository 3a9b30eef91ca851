import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../../test/harness/process.ts";
import { CappedBuffer, ExecPool, runCommand, SAFE_PATH, type ExecOptions } from "./exec.ts";
import { ProblemError } from "../../lib/http/problem.ts";

/** True once the process is dead: gone, or a zombie waiting for an init to reap it. */
const gone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
};

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

describe("runCommand", () => {
  let cwd: string;
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), "agentry-exec-"));
  });
  after(() => rm(cwd, { recursive: true, force: true }));
  const run = (command: string[], options: Partial<ExecOptions> = {}) =>
    runCommand({ command, cwd, timeoutMs: 30_000, maxOutputBytes: 1 << 20, ...options });

  it("passes argv to the program without a shell", async () => {
    const hostile = ["a; touch pwned", "$(touch pwned2)", "`touch pwned3`", "*", "&& rm -rf /", "'\"", "\n"];
    const result = await run(["printf", "%s|", ...hostile]);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, hostile.map((a) => `${a}|`).join(""));
    for (const f of ["pwned", "pwned2", "pwned3"]) assert.equal(existsSync(join(cwd, f)), false);
  });

  it("runs in the workspace with a minimal environment plus the caller's", async () => {
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

  it("kills the whole process group at the timeout", async () => {
    const result = await run(["sh", "-c", "sleep 60 & echo $! > bg.pid; sleep 60"], { timeoutMs: 300 });
    assert.equal(result.timedOut, true);
    assert.equal(result.signal, "SIGKILL");
    assert.equal(result.exitCode, null);
    const bg = Number(await readFile(join(cwd, "bg.pid"), "utf8"));
    await waitFor("the background sleep to be killed", () => gone(bg), { timeoutMs: 10_000 });
  });

  it("does not wait for background processes the command left running", async () => {
    const result = await run(["sh", "-c", "sleep 60 & echo $! > left.pid; echo done"]);
    assert.equal(result.stdout, "done\n");
    assert.equal(result.timedOut, false);
    const left = Number(await readFile(join(cwd, "left.pid"), "utf8"));
    await waitFor("the left-behind sleep to be killed", () => gone(left), { timeoutMs: 10_000 });
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
  it("refuses commands beyond its cap with 429 and can abort the running ones", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "agentry-pool-"));
    try {
      const pool = new ExecPool(1);
      const options = { cwd, timeoutMs: 60_000, maxOutputBytes: 1000 };
      const running = pool.run({ command: ["sleep", "60"], ...options });
      assert.equal(pool.active, 1);
      await assert.rejects(
        pool.run({ command: ["true"], ...options }),
        (err: unknown) => err instanceof ProblemError && err.status === 429,
      );
      pool.abort("/some/other/workspace");
      assert.equal(pool.active, 1);
      pool.abort(cwd);
      const result = await running;
      assert.equal(result.signal, "SIGKILL");
      assert.equal(pool.active, 0);
      assert.equal((await pool.run({ command: ["true"], ...options })).exitCode, 0);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
