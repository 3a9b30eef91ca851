// Small helpers for the harness: free loopback ports, supervised child processes with
// their output in log files, and polling a condition with a deadline (never fixed sleeps).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { once } from "node:events";
import { join } from "node:path";

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
