// The product processes a chaos test watches from outside: the gateway (gateway/main.ts)
// with a tokens file, and a sandbox runtime (runtimes/sandbox/main.ts), each a child
// process whose output is kept so a test can check it never crashed and never logged a
// secret. Temp dirs made here are removed when the test ends.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashToken } from "../../gateway/auth/tokens.ts";
import type { Identity } from "../../gateway/auth/identity.ts";
import { repoRoot } from "../harness/paths.ts";
import { startProgram } from "../harness/process.ts";
import { testTrust, type TestTrust } from "../harness/tokens.ts";
import { startGatewayProcess, type GatewayProcess } from "../gateway/harness.ts";

type After = { after: (fn: () => Promise<void>) => void };

export async function tempDir(t: After, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** gateway/main.ts with static bearer tokens (and no TokenReview), plus `env`. */
export async function gatewayWithTokens(
  t: After,
  tokens: Record<string, Omit<Identity, "via">>,
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const dir = await tempDir(t, "agentry-chaos-gw-");
  const file = join(dir, "tokens.json");
  const list = Object.entries(tokens).map(([token, who]) => ({ sha256: hashToken(token), ...who }));
  await writeFile(file, JSON.stringify(list));
  return startGatewayProcess(t, { AGENTRY_TOKENS_FILE: file, AGENTRY_TOKEN_REVIEW: "false", ...env });
}

export interface SandboxProcess {
  url: string;
  root: string;
  child: ChildProcess;
  logs: string[];
  /** The key the sandbox trusts (in a directory of its own), to sign tokens with. */
  trust: TestTrust;
  /** The sandbox's pod audience (it runs as pod chaos/sandbox). */
  podAudience: string;
}

/** One sandbox runtime on a free loopback port with its own workspace root and trusted key. */
export async function startSandbox(t: After, args: string[] = []): Promise<SandboxProcess> {
  const dir = await tempDir(t, "agentry-chaos-sandbox-");
  const root = join(dir, "workspaces");
  const trust = await testTrust("agentry-operator", await tempDir(t, "agentry-chaos-trust-"));
  const {
    child,
    logs,
    ready: port,
  } = await startProgram(t, {
    what: "the sandbox",
    script: join(repoRoot, "runtimes", "sandbox", "main.ts"),
    args: [
      "--listen=127.0.0.1:0",
      "--metrics-addr=127.0.0.1:0",
      `--root=${root}`,
      `--trust-dir=${trust.dir}`,
      "--pod-namespace=chaos",
      "--pod-name=sandbox",
      ...args,
    ],
    ready: (l) => (l.includes('"sandbox listening"') ? (JSON.parse(l) as { port: number }).port : undefined),
  });
  return { url: `http://127.0.0.1:${port}`, root, child, logs, trust, podAudience: "pod:chaos/sandbox" };
}

export const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;
