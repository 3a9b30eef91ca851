// The agentry CLI as a child process (asynchronous: the gateway under test runs in the test's
// own process), with no config file unless the test names one.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../harness/paths.ts";

export const CLI = join(repoRoot, "cli", "main.ts");

export interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs the CLI to its end. */
export function agentry(args: string[], env: Record<string, string>, input?: string): Promise<Ran> {
  return run(process.execPath, cliArgs(args), cliEnv(env), input);
}

export async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<Ran> {
  const child = spawn(cmd, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const ran = started(child);
  child.stdin.end(input ?? "");
  return ran.done;
}

/** Starts the CLI and leaves it running: its output so far, and its end. */
export function startAgentry(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, cliArgs(args), {
    cwd: repoRoot,
    env: { ...process.env, ...cliEnv(env) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end();
  return { child, ...started(child) };
}

const cliArgs = (args: string[]) => ["--import", "tsx", CLI, ...args];
const cliEnv = (env: Record<string, string>) => ({ AGENTRY_CONFIG: join(tmpdir(), "agentry-none"), ...env });

function started(child: ChildProcessWithoutNullStreams) {
  const ran = { out: "", err: "" };
  child.stdout.on("data", (d: Buffer) => (ran.out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (ran.err += d.toString()));
  const done = new Promise<Ran>((resolve) =>
    child.once("close", (code) => resolve({ code, out: ran.out, err: ran.err })),
  );
  return { output: ran, done };
}
