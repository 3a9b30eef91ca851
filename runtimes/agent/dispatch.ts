// `agent dispatch`: what a Pipeline job pod runs for a step that names an AgentRuntime.
// It reads the pipeline manifest (operator/controllers/pipeline/desired.ts), sends the step's input to the
// agent's POST /v1/tasks with the agent's token (a file the operator keeps fresh, read
// before every attempt), retries while the agent is unreachable, busy or not ready, or
// refuses a token that may since have been refreshed (within the step's time limit), never
// follows a redirect, and returns the output — or one line saying why it failed.
import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { defineFlags } from "../../lib/cli/flags.ts";
import { AgentPath, StepEnv, type TaskRequest, type TaskResult } from "../../contracts/agent.ts";
import { errorMessage } from "../../lib/log.ts";

export const DEFAULT_STEP_TIMEOUT_SECONDS = 600;

export interface DispatchOptions {
  manifest: string;
  step: string;
  agentUrl: string;
  /** AGENTRY_AGENT_TOKEN_FILE: the token for the agent, with scope tasks. */
  tokenFile: string;
  /** AGENTRY_STEP_INPUT, when set: wins over the manifest's input. */
  input: string | undefined;
}

/** A failure that ends the dispatch: `code` is the exit status (2: usage or manifest). */
export class DispatchError extends Error {
  readonly code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.name = "DispatchError";
    this.code = code;
  }
}

const flags = defineFlags(
  "agent dispatch",
  {
    manifest: { kind: "string", env: StepEnv.MANIFEST, help: "the pipeline manifest (JSON), required" },
    step: { kind: "string", env: StepEnv.STEP, help: "the step to run, required" },
    "agent-url": { kind: "string", env: StepEnv.AGENT_URL, help: "the AgentRuntime's URL" },
    "agent-token-file": {
      kind: "string",
      env: StepEnv.AGENT_TOKEN_FILE,
      help: "file holding the token for the agent (scope tasks; re-read before every attempt)",
    },
    input: { kind: "string", env: StepEnv.STEP_INPUT, help: "the step's input, instead of the manifest's" },
  },
  { description: "Runs one Pipeline step on an AgentRuntime and prints its output." },
);

export const dispatchUsage = flags.usage;

/** The options, "help", or a DispatchError with code 2. */
export function dispatchOptions(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): DispatchOptions | "help" {
  let v;
  try {
    v = flags.parse(argv, env);
  } catch (err) {
    throw new DispatchError(`dispatch: ${errorMessage(err)}`, 2);
  }
  if (v === "help") return "help";
  if (!v.manifest) throw new DispatchError("dispatch: --manifest (AGENTRY_MANIFEST) is required", 2);
  if (!v.step) throw new DispatchError("dispatch: --step (AGENTRY_STEP) is required", 2);
  return {
    manifest: v.manifest,
    step: v.step,
    agentUrl: v["agent-url"] ?? "",
    tokenFile: v["agent-token-file"] ?? "",
    input: v.input,
  };
}

interface ManifestStep {
  name: string;
  agentRef?: { name: string };
  input?: string;
  timeoutSeconds?: number;
}

/** The step to run, with its input and time limit. */
export async function loadStep(
  o: DispatchOptions,
): Promise<{ step: ManifestStep; input: string; timeoutSeconds: number }> {
  let manifest: { pipeline?: string; steps?: ManifestStep[] };
  try {
    manifest = JSON.parse(await readFile(o.manifest, "utf8")) as typeof manifest;
  } catch (err) {
    throw new DispatchError(`cannot read the pipeline manifest ${o.manifest}: ${errorMessage(err)}`, 2);
  }
  const steps = Array.isArray(manifest.steps) ? manifest.steps : [];
  const step = steps.find((s) => s.name === o.step);
  if (!step)
    throw new DispatchError(
      `step "${o.step}" is not in the manifest of pipeline ${manifest.pipeline ?? "?"} (steps: ${steps.map((s) => s.name).join(", ") || "none"})`,
      2,
    );
  if (!step.agentRef)
    throw new DispatchError(
      `step "${o.step}" runs an image, not an AgentRuntime: dispatch only runs agentRef steps`,
      2,
    );
  const input = o.input ?? step.input;
  if (input === undefined)
    throw new DispatchError(`step "${o.step}" has no input: set input on the step of the Pipeline`, 2);
  return { step, input, timeoutSeconds: step.timeoutSeconds ?? DEFAULT_STEP_TIMEOUT_SECONDS };
}

/**
 * Statuses worth another try: the agent is busy, not ready yet, or its Service has no
 * endpoint; or it refused the token (expired, or signed by a key it does not trust yet),
 * which the operator may have refreshed since.
 */
const RETRY_STATUSES = new Set([401, 429, 502, 503]);
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
]);

/** Runs the step on the agent; throws DispatchError with the reason on failure. */
export async function dispatch(
  agentUrl: string,
  agentName: string,
  input: string,
  timeoutSeconds: number,
  options: {
    fetch?: typeof fetch;
    now?: () => number;
    minBackoffMs?: number;
    /** The token for the agent, asked for before every attempt. */
    token?: () => string | undefined;
  } = {},
): Promise<TaskResult> {
  if (!agentUrl)
    throw new DispatchError(
      `AGENTRY_AGENT_URL is empty: the AgentRuntime ${agentName} did not exist when the run was created`,
      2,
    );
  const token = options.token ?? (() => undefined);
  const f = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const deadline = now() + Math.ceil(timeoutSeconds * 1000);
  const url = `${agentUrl.replace(/\/+$/, "")}${AgentPath.tasks}`;
  let backoff = options.minBackoffMs ?? 500;
  let last = "";
  for (;;) {
    const remaining = deadline - now();
    if (remaining <= 0) break;
    let wait = backoff;
    try {
      const bearer = token();
      const res = await f(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        },
        body: JSON.stringify({
          input,
          timeoutSeconds: Math.max(1, Math.floor(remaining / 1000)),
        } satisfies TaskRequest),
        redirect: "manual",
        signal: AbortSignal.timeout(remaining + 5000),
      });
      if (res.status >= 300 && res.status < 400)
        throw new DispatchError(
          `agent ${agentName} answered a redirect (${res.status}), which is never followed: ${agentUrl} is not the agent`,
        );
      const text = await res.text();
      if (res.ok) return JSON.parse(text) as TaskResult;
      const detail = problemDetail(text);
      last = `agent ${agentName} answered ${res.status}: ${detail}`;
      if (!RETRY_STATUSES.has(res.status)) throw new DispatchError(last);
      const retryAfter = Number(res.headers.get("retry-after"));
      if (retryAfter > 0) wait = Math.max(wait, retryAfter * 1000);
    } catch (err) {
      if (err instanceof DispatchError) throw err;
      if (err instanceof Error && err.name === "TimeoutError") {
        last = `agent ${agentName} did not answer in time`;
        break;
      }
      const code = causeCode(err);
      last = `agent ${agentName} at ${agentUrl} is unreachable (${code ?? errorMessage(err)})`;
      if (!code || !TRANSIENT_CODES.has(code)) throw new DispatchError(last);
    }
    const left = deadline - now();
    if (left <= 0) break;
    await delay(Math.min(wait, left));
    backoff = Math.min(backoff * 2, 8000);
  }
  throw new DispatchError(`step timed out after ${timeoutSeconds} s: ${last || "no answer"}`);
}

function problemDetail(text: string): string {
  try {
    const p = JSON.parse(text) as { detail?: unknown; reason?: unknown };
    if (typeof p.detail === "string") return p.detail;
  } catch {
    // not JSON: use the text itself
  }
  return text.trim().slice(0, 300) || "(empty answer)";
}

function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
