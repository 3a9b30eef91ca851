// Command execution inside a workspace: argv only (never a shell), a minimal environment,
// the whole process group killed at the deadline, output capped per stream, and a bounded
// number of commands at a time.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { ExecResult } from "../../contracts/sandbox.ts";
import { errorCode, ProblemError } from "../../lib/http/problem.ts";

export const SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** How long to wait for output pipes to close after the command has exited. */
const PIPE_DRAIN_MS = 1000;

export interface ExecOptions {
  command: string[];
  cwd: string;
  /** Extra variables on top of the minimal environment (they may override it). */
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs: number;
  maxOutputBytes: number;
  signal?: AbortSignal;
}

/** The environment a command sees: PATH, HOME (the workspace), LANG, plus the caller's. */
export function commandEnv(workspaceDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SAFE_PATH, HOME: workspaceDir, LANG: "C.UTF-8", ...extra };
}

/** Keeps the first `limit` bytes of a stream and remembers whether more came. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly limit: number;
  truncated = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    const kept = chunk.length > room ? chunk.subarray(0, Math.max(room, 0)) : chunk;
    if (kept.length === 0) return;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** Runs one command to completion (or its deadline); never rejects for the command's own failures. */
export function runCommand(options: ExecOptions): Promise<ExecResult> {
  const started = performance.now();
  const [file, ...args] = options.command;
  if (!file) return Promise.reject(new ProblemError(400, "command must name a program"));
  const stdout = new CappedBuffer(options.maxOutputBytes);
  const stderr = new CappedBuffer(options.maxOutputBytes);
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: commandEnv(options.cwd, options.env),
    detached: true, // its own process group, so the deadline kills everything it started
    shell: false,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is already gone
    }
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, options.timeoutMs);
  options.signal?.addEventListener("abort", killGroup, { once: true });
  child.stdout.on("data", (c: Buffer) => stdout.push(c));
  child.stderr.on("data", (c: Buffer) => stderr.push(c));
  child.stdin.on("error", () => undefined); // the command may exit without reading stdin
  child.stdin.end(options.stdin ?? "");

  return new Promise((resolve) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    let drain: NodeJS.Timeout | undefined;
    const finish = (result?: Partial<ExecResult>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      options.signal?.removeEventListener("abort", killGroup);
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        stdout: stdout.text(),
        stderr: stderr.text(),
        timedOut,
        truncated: stdout.truncated || stderr.truncated,
        durationMs: Math.round(performance.now() - started),
        ...result,
      });
    };
    child.once("error", (err) => {
      if (child.pid !== undefined) return; // errors after spawn surface as exit/close
      const code = errorCode(err);
      if (code === "ENOENT" && !existsSync(options.cwd)) {
        finish({ exitCode: 126, stderr: "agentry-sandbox: the workspace directory is gone\n" });
        return;
      }
      const exitCode = code === "ENOENT" ? 127 : 126;
      const reason = code === "ENOENT" ? "command not found" : `cannot run (${code ?? err.message})`;
      finish({ exitCode, stderr: `agentry-sandbox: ${file}: ${reason}\n` });
    });
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      // Background processes it left behind would hold the pipes open: end them too.
      killGroup();
      drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, PIPE_DRAIN_MS);
    });
    child.once("close", () => finish());
  });
}

/** Runs commands with a cap on how many run at once (429 beyond) and can stop them all. */
export class ExecPool {
  readonly maxConcurrent: number;
  private readonly running = new Map<AbortController, string>();

  constructor(maxConcurrent: number) {
    this.maxConcurrent = maxConcurrent;
  }

  get active(): number {
    return this.running.size;
  }

  async run(options: ExecOptions): Promise<ExecResult> {
    if (this.running.size >= this.maxConcurrent)
      throw new ProblemError(
        429,
        `${this.maxConcurrent} commands are already running in this sandbox; retry later`,
        { "retry-after": "1" },
      );
    const controller = new AbortController();
    this.running.set(controller, options.cwd);
    try {
      return await runCommand({ ...options, signal: controller.signal });
    } finally {
      this.running.delete(controller);
    }
  }

  /** Kills the commands running in `cwd` (a workspace being deleted), or all when omitted. */
  abort(cwd?: string): void {
    for (const [controller, dir] of this.running) if (cwd === undefined || dir === cwd) controller.abort();
  }
}
