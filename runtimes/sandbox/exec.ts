// Command execution inside a workspace: argv only (never a shell), a clean environment,
// confined as confine.ts describes (limits, a PID namespace or a subreaper, the workspace's
// own uid when the runtime is root), the whole process tree killed at the deadline or on
// cancel, output capped per stream and either collected or streamed, and a fair share of
// exec slots per workspace (slots.ts).
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { ExecResult } from "../../contracts/sandbox.ts";
import { errorCode, ProblemError } from "../../lib/http/problem.ts";
import {
  commandEnv,
  confinedArgv,
  envBlob,
  parseStatus,
  SAFE_PATH,
  type Confinement,
  type ExecUser,
} from "./confine.ts";
import { killTree } from "./proctree.ts";
import type { FairSlots } from "./slots.ts";

/** How long to wait for output pipes to close after the tree was killed. */
const PIPE_DRAIN_MS = 1000;

export type OutputStream = "stdout" | "stderr";

/** Where streamed output goes; `write` returning false pauses the command until `drained`. */
export interface OutputSink {
  write(stream: OutputStream, text: string): boolean;
  drained(): Promise<void>;
}

export interface ExecOptions {
  command: string[];
  /** Working directory (validated by the caller); HOME is `home`, else this. */
  cwd: string;
  home?: string;
  /** Extra variables on top of the minimal environment (they may override it). */
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs: number;
  maxOutputBytes: number;
  confinement: Confinement;
  signal?: AbortSignal;
  /** Streams output here instead of collecting it; the result's stdout/stderr are then "". */
  sink?: OutputSink;
  /** Called once the command was started. */
  onStart?: () => void;
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

  /** Keeps what fits and returns it. */
  push(chunk: Buffer): Buffer {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    const kept = chunk.length > room ? chunk.subarray(0, Math.max(room, 0)) : chunk;
    if (kept.length === 0) return kept;
    this.chunks.push(kept);
    this.size += kept.length;
    return kept;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** Wrapper pids running now: when the runtime is pid 1, other children of it are orphans. */
const wrappers = new Set<number>();

/** Runs one command to completion (or its deadline, or cancel); never rejects for the command's own failures. */
export function runCommand(options: ExecOptions): Promise<ExecResult> {
  const started = performance.now();
  if (!options.command[0]) return Promise.reject(new ProblemError(400, "command must name a program"));
  const argv = confinedArgv(options.command, options.confinement);
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: { PATH: SAFE_PATH }, // the wrappers see nothing of the request; the command gets its env on fd 3
    detached: true, // a new session: what the tree lookup falls back on
    shell: false,
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  const ctl = child.stdio[3] as Readable & NodeJS.WritableStream;
  const streams: Record<OutputStream, Readable> = { stdout: child.stdout, stderr: child.stderr };
  const caps = {
    stdout: new CappedBuffer(options.maxOutputBytes),
    stderr: new CappedBuffer(options.maxOutputBytes),
  };
  if (child.pid !== undefined) wrappers.add(child.pid);

  let status: Status;
  let timedOut = false;
  let cancelled = false;
  let killing: Promise<void> | undefined;
  const killAll = () => {
    if (child.pid === undefined) return;
    const pid = child.pid;
    killing ??= killTree({
      root: pid,
      session: pid,
      ...(process.pid === 1 ? { orphansOf: 1, exclude: wrappers } : {}),
    }).catch(() => undefined);
  };
  const timer = setTimeout(() => {
    if (status) return;
    timedOut = true;
    killAll();
  }, options.timeoutMs);
  const onAbort = () => {
    if (status) return;
    cancelled = true;
    killAll();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let control = "";
  ctl.on("data", (c: Buffer) => {
    control += c.toString();
    const line = control.split("\n")[0];
    if (status || control.indexOf("\n") < 0 || line === undefined) return;
    status = parseStatus(line);
    killAll(); // the command is done: end whatever it left running
  });
  ctl.on("error", () => undefined);
  ctl.end(envBlob(commandEnv(options.home ?? options.cwd, options.env)));

  const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  let paused = false;
  const forward = (name: OutputStream, chunk: Buffer) => {
    const kept = caps[name].push(chunk);
    if (!options.sink || kept.length === 0) return;
    const text = decoders[name].write(kept);
    if (text === "" || options.sink.write(name, text) || paused) return;
    paused = true;
    child.stdout.pause();
    child.stderr.pause();
    void options.sink.drained().then(() => {
      paused = false;
      child.stdout.resume();
      child.stderr.resume();
    });
  };
  for (const name of ["stdout", "stderr"] as const) streams[name].on("data", (c: Buffer) => forward(name, c));
  child.stdin.on("error", () => undefined); // the command may exit without reading stdin
  child.stdin.end(options.stdin ?? "");
  if (child.pid !== undefined) options.onStart?.();

  return new Promise((resolve) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    let drain: NodeJS.Timeout | undefined;
    const finish = (result?: Partial<ExecResult>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      options.signal?.removeEventListener("abort", onAbort);
      if (child.pid !== undefined) wrappers.delete(child.pid);
      if (options.sink)
        for (const name of ["stdout", "stderr"] as const) {
          const rest = decoders[name].end();
          if (rest) options.sink.write(name, rest);
        }
      const end = outcome({ status, exit, timedOut, cancelled });
      resolve({
        exitCode: end.exitCode,
        signal: end.signal,
        stdout: options.sink ? "" : caps.stdout.text(),
        stderr: options.sink ? "" : caps.stderr.text(),
        timedOut: end.timedOut,
        truncated: caps.stdout.truncated || caps.stderr.truncated,
        durationMs: Math.round(performance.now() - started),
        ...result,
      });
    };
    child.once("error", (err) => {
      if (child.pid !== undefined) return; // errors after spawn surface as exit/close
      const code = errorCode(err);
      if (code === "ENOENT" && !existsSync(options.cwd)) {
        finish({ exitCode: 126, stderr: "agentry-sandbox: the working directory is gone\n" });
        return;
      }
      finish({
        exitCode: 126,
        stderr: `agentry-sandbox: cannot start the command's supervisor ${argv[0]} (${code ?? err.message})\n`,
      });
    });
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      killAll(); // a supervisor that died early may have left processes behind
      const closePipes = () => {
        drain = setTimeout(() => {
          for (const s of [child.stdout, child.stderr, ctl]) s.destroy();
          finish();
        }, PIPE_DRAIN_MS);
      };
      if (killing) void killing.then(closePipes);
      else closePipes();
    });
    child.once("close", () => finish());
  });
}

type Status = ReturnType<typeof parseStatus>;

/**
 * How a command ended, from what is known when its pipes close: the supervisor's report
 * (`status`, if it sent one), the supervisor's own exit, and whether the runtime's deadline
 * or a cancel started a kill. `timedOut` and `cancelled` are only ever set while no report
 * had come. A report that comes after them and tells of a signal is that kill landing (the
 * supervisor may see its command die before it is killed itself): still a timeout. A report
 * of an exit is the command finishing on its own just before the kill.
 */
export function outcome(o: {
  status: Status;
  exit?: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  timedOut: boolean;
  cancelled: boolean;
}): { exitCode: number | null; signal: string | null; timedOut: boolean } {
  const killedByUs = (o.timedOut || o.cancelled) && (!o.status || o.status.signal !== null);
  const end = o.status ?? (killedByUs ? { exitCode: null, signal: "SIGKILL" } : undefined);
  return {
    exitCode: end ? end.exitCode : (o.exit?.code ?? null),
    signal: end ? end.signal : (o.exit?.signal ?? null),
    timedOut: o.timedOut && killedByUs,
  };
}

/** Processes (threads) of `uid` now: what RLIMIT_NPROC counts. */
export function tasksOfUser(uid: number, proc = "/proc"): number {
  let n = 0;
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`${proc}/${name}/status`, "utf8");
      const owner = Number(/^Uid:\s+(\d+)/m.exec(text)?.[1]);
      if (owner === uid) n += Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? 1);
    } catch {
      // gone
    }
  }
  return n;
}

export interface ExecPoolOptions {
  slots: FairSlots;
  isolation: Confinement["isolation"];
  limits: Confinement["limits"];
}

/** Runs commands within the fair share of slots and can stop them per workspace or all. */
export class ExecPool {
  private readonly o: ExecPoolOptions;
  private readonly running = new Map<AbortController, string>();

  constructor(options: ExecPoolOptions) {
    this.o = options;
  }

  get active(): number {
    return this.running.size;
  }

  get slots(): FairSlots {
    return this.o.slots;
  }

  /**
   * Waits for a slot of `workspace` (429 when its queue is full or the wait too long), then
   * runs the command as `user` (absent: the runtime's own user).
   */
  async run(
    workspace: string,
    user: ExecUser | undefined,
    options: Omit<ExecOptions, "confinement" | "signal">,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    const release = await this.o.slots.acquire(workspace, signal);
    const controller = new AbortController();
    const cancel = () => controller.abort();
    signal?.addEventListener("abort", cancel, { once: true });
    this.running.set(controller, workspace);
    try {
      const confinement: Confinement = { isolation: this.o.isolation, limits: this.o.limits, user };
      // Commands under the runtime's own uid share RLIMIT_NPROC with it and each other.
      if (!user) confinement.processesInUse = tasksOfUser(process.getuid?.() ?? 0);
      return await runCommand({ ...options, confinement, signal: controller.signal });
    } finally {
      signal?.removeEventListener("abort", cancel);
      this.running.delete(controller);
      release();
    }
  }

  /** Whether a command of `workspace` is running. */
  runningIn(workspace: string): boolean {
    for (const ws of this.running.values()) if (ws === workspace) return true;
    return false;
  }

  /** Kills the commands running in `workspace` (being deleted), or all when omitted. */
  abort(workspace?: string): void {
    for (const [controller, ws] of this.running)
      if (workspace === undefined || ws === workspace) controller.abort();
  }
}

/**
 * Whether commands can run under `isolation` here: runs `true` through the whole chain.
 * Answers the reason when they cannot (a missing tool, no permission for namespaces).
 */
export async function probeIsolation(
  isolation: Confinement["isolation"],
  limits: Confinement["limits"],
  cwd: string,
  user: ExecUser | undefined,
): Promise<string | undefined> {
  const result = await runCommand({
    command: ["true"],
    cwd,
    timeoutMs: 15_000,
    maxOutputBytes: 4096,
    confinement: { isolation, limits, user, processesInUse: user ? 0 : tasksOfUser(process.getuid?.() ?? 0) },
  });
  if (result.exitCode === 0) return undefined;
  const why = result.stderr.trim().split("\n").slice(-2).join("; ");
  return why || `exit code ${result.exitCode ?? result.signal}`;
}
