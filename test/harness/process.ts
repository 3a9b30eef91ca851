// Small helpers for the harness: free loopback ports, supervised child processes with
// their output in log files, and polling a condition with a deadline (never fixed sleeps).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("could not allocate a port");
  return address.port;
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 60_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: last error: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Stops a child process: SIGTERM, then `kill` (default SIGKILL) once `graceMs` has passed,
 * and waits for it to exit. Nothing to do for one that already exited.
 */
export async function stopProcess(
  child: ChildProcess,
  graceMs: number,
  kill: () => void = () => child.kill("SIGKILL"),
): Promise<void> {
  // Exited already, or never started (a failed spawn emits "error" and never "exit").
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(kill, graceMs);
  await exited;
  clearTimeout(timer);
}

/** A child process whose stdout and stderr go to `<logDir>/<name>.log`. */
export class Supervised {
  readonly name: string;
  readonly logFile: string;
  private readonly command: string;
  private readonly args: string[];
  private readonly env: NodeJS.ProcessEnv;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(
    name: string,
    command: string,
    args: string[],
    logDir: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.env = env;
    this.logFile = join(logDir, `${name}.log`);
  }

  start(): void {
    const log = createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(this.command, this.args, { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        log.end(`\n[harness] ${this.name} exited code=${code} signal=${signal}\n`);
        resolve(code);
      });
      child.once("error", (err) => {
        log.end(`\n[harness] ${this.name} failed to start: ${err.message}\n`);
        resolve(-1);
      });
    });
    this.child = child;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Sends `signal` and waits for the exit; escalates to SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
    if (!this.child || !this.exited || !this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A test's hook for cleaning up after it (node:test's TestContext has one). */
export type After = { after: (fn: () => Promise<void>) => void };

export interface ProgramOptions<T> {
  /** The program's entry point (a .ts file, run through tsx). */
  script: string;
  args?: string[];
  /** Its whole environment (pass process.env along explicitly when it should inherit it). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** What it is, for messages ("the sandbox"). */
  what: string;
  /** Reads a line of its output: a value once it is ready (its "listening" log), else undefined. */
  ready: (line: string) => T | undefined;
  timeoutMs?: number;
  /** How it is stopped when the test ends (SIGTERM by default, waiting for it to exit). */
  stopSignal?: NodeJS.Signals;
}

/**
 * One of our TypeScript programs as a child process of a test: its output lines collected,
 * stopped when the test ends, and returned once it says it is ready (what `ready` read from
 * its output); it exiting before that fails with its output.
 */
export async function startProgram<T>(
  t: After,
  o: ProgramOptions<T>,
): Promise<{ child: ChildProcess; logs: string[]; ready: T }> {
  const child = spawn(process.execPath, ["--import", "tsx", o.script, ...(o.args ?? [])], {
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.env ? { env: o.env } : {}),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  createInterface({ input: child.stdout }).on("line", (l) => logs.push(l));
  createInterface({ input: child.stderr }).on("line", (l) => logs.push(l));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(o.stopSignal ?? "SIGTERM");
      await exited;
    }
  });
  let ready: T | undefined;
  await waitFor(
    `${o.what} to be ready`,
    () => {
      for (const l of logs) if ((ready = o.ready(l)) !== undefined) return true;
      // Gone before it was ready: no use waiting on (said below, with its output).
      return child.exitCode !== null || child.signalCode !== null;
    },
    { timeoutMs: o.timeoutMs ?? 60_000 },
  );
  if (ready === undefined)
    throw new Error(`${o.what} exited with ${child.exitCode ?? child.signalCode}: ${logs.join("\n")}`);
  return { child, logs, ready };
}
