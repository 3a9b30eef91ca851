// Agent runtime settings: environment variables the operator sets on the agent Pod
// (operator/controllers/agentruntime/desired.ts), a few tunables, and flags that override them; `--help` lists
// them. Two kinds of problems are told apart:
//   - the process cannot run at all (unknown flag, bad port or number): a thrown Error,
//     main.ts prints it and exits 2;
//   - the model settings are wrong (missing API key, unsupported provider): `modelProblem`
//     holds one line a person can act on. The agent still serves /healthz and answers
//     /readyz 503 {"status":"error","reason":...}, a reason the operator can show in the
//     AgentRuntime's status, where a crash loop would show only "CrashLoopBackOff";
//     `--strict` exits 2 instead.
import { formatDuration } from "../../lib/cli/duration.ts";
import { podFlags } from "../../lib/cli/podflags.ts";
import { defineFlags, logLevelFlag, metricsAddrFlag, type Warn } from "../../lib/cli/flags.ts";
import { ModelSettings } from "../../api/v1alpha1/agentruntime.ts";
import { AgentEnv } from "../../contracts/agent.ts";
import { METRICS_PORT } from "../../contracts/metrics.ts";
import { parseWorkspaceUrl } from "../../contracts/sandbox.ts";

export type ProviderName = (typeof PROVIDERS)[number];
export const PROVIDERS = ModelSettings.shape.provider.options;

/** Providers the default agent speaks to, and how. */
export const SUPPORTED: Record<string, "echo" | "openai" | "anthropic"> = {
  echo: "echo",
  openai: "openai",
  "openai-compatible": "openai",
  "azure-openai": "openai",
  ollama: "openai",
  anthropic: "anthropic",
};

const DEFAULT_ENDPOINTS: Partial<Record<ProviderName, string>> = {
  openai: "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com/v1",
  ollama: "http://localhost:11434/v1",
};
const KEY_REQUIRED = new Set<ProviderName>(["openai", "anthropic", "azure-openai"]);

export interface ModelConfig {
  provider: ProviderName;
  model: string;
  /** Base URL without a trailing slash ("" for echo). */
  endpoint: string;
  apiKey: string | undefined;
  systemPrompt: string | undefined;
  maxOutputTokens: number;
}

export interface AgentConfig {
  name: string;
  namespace: string;
  host: string;
  port: number;
  /** Where /metrics is served (Prometheus), apart from the API. */
  metricsAddr: { host: string; port: number };
  /** undefined when AGENTRY_MODEL_PROVIDER is unset or invalid; see modelProblem. */
  model: ModelConfig | undefined;
  modelProblem: string | undefined;
  workspace:
    | {
        name: string;
        baseUrl: string;
        id: string;
        /** The file holding the token for the workspace, read before each call. */
        tokenFile: string | undefined;
      }
    | undefined;
  workspaceProblem: string | undefined;
  /** Directory of the trusted public keys: tokens signed by them open the API. */
  trustDir: string;
  /** This pod (downward API): tokens for it open the API as well as tokens for the agent. */
  pod: { namespace: string; name: string } | undefined;
  maxConcurrentTasks: number;
  defaultTaskTimeoutSeconds: number;
  maxTaskTimeoutSeconds: number;
  maxInputBytes: number;
  maxFileBytes: number;
  shutdownGraceSeconds: number;
  echoDelayMs: number;
  strict: boolean;
  logLevel: string;
}

/** Every setting, as a flag and (mostly) the variable the operator sets, in --help's order. */
const flags = defineFlags(
  "agent",
  {
    name: { kind: "string", env: AgentEnv.NAME, help: "name of the AgentRuntime", default: "agent" },
    namespace: { kind: "string", env: AgentEnv.NAMESPACE, help: "namespace of the AgentRuntime" },
    host: { kind: "string", env: "AGENTRY_HOST", help: "address to listen on", default: "0.0.0.0" },
    port: {
      kind: "int",
      env: AgentEnv.PORT,
      help: "port to listen on (0: any free port)",
      default: 8080,
      min: 0,
      max: 65535,
    },
    "metrics-addr": metricsAddrFlag(AgentEnv.METRICS_ADDR, METRICS_PORT),
    provider: {
      kind: "string",
      env: AgentEnv.MODEL_PROVIDER,
      help: `model provider: ${PROVIDERS.join(", ")}`,
    },
    model: { kind: "string", env: AgentEnv.MODEL, help: "model name as the provider knows it" },
    endpoint: {
      kind: "string",
      env: AgentEnv.MODEL_ENDPOINT,
      help: "base URL of the provider API (defaults for openai, anthropic, ollama)",
    },
    "api-key": {
      kind: "string",
      env: AgentEnv.MODEL_API_KEY,
      help: "provider API key (from the credentials Secret; prefer the variable to the flag)",
    },
    "system-prompt": {
      kind: "string",
      env: "AGENTRY_SYSTEM_PROMPT",
      help: "system prompt sent with every task",
    },
    "max-output-tokens": {
      kind: "string",
      env: "AGENTRY_MAX_OUTPUT_TOKENS",
      help: "largest answer asked of the model",
      default: "4096",
    },
    workspace: { kind: "string", env: AgentEnv.WORKSPACE, help: "name of the Workspace the agent works in" },
    "workspace-url": {
      kind: "string",
      env: AgentEnv.WORKSPACE_URL,
      help: "the workspace on its sandbox: http://<ip>:<port>/workspaces/<id>",
    },
    "workspace-token-file": {
      kind: "string",
      env: AgentEnv.WORKSPACE_TOKEN_FILE,
      help: "file holding the token for the workspace (mounted by the operator, re-read at each call)",
    },
    ...podFlags,
    "max-concurrent-tasks": {
      kind: "int",
      env: "AGENTRY_MAX_CONCURRENT_TASKS",
      help: "tasks running at once (429 beyond)",
      default: 4,
      min: 1,
    },
    "task-timeout": {
      kind: "duration",
      env: "AGENTRY_TASK_TIMEOUT",
      help: "time limit of a task that names none (whole seconds)",
      default: "5m",
      min: "1s",
      deprecated: [{ env: "AGENTRY_TASK_TIMEOUT_SECONDS", unit: "s" }],
    },
    "max-task-timeout": {
      kind: "duration",
      env: "AGENTRY_MAX_TASK_TIMEOUT",
      help: "largest time limit (timeoutSeconds) a task may ask for (whole seconds)",
      default: "1h",
      min: "1s",
      deprecated: [{ env: "AGENTRY_MAX_TASK_TIMEOUT_SECONDS", unit: "s" }],
    },
    "max-input-bytes": {
      kind: "int",
      env: "AGENTRY_MAX_INPUT_BYTES",
      help: "largest task body",
      default: 1048576,
      min: 1,
    },
    "max-file-bytes": {
      kind: "int",
      env: "AGENTRY_MAX_FILE_BYTES",
      help: "largest workspace file upload",
      default: 16777216,
      min: 1,
    },
    "shutdown-grace": {
      kind: "duration",
      env: "AGENTRY_SHUTDOWN_GRACE",
      help: "on SIGTERM, how long running tasks may finish",
      default: "25s",
      min: "0s",
      deprecated: [{ flag: "shutdown-grace-seconds", env: "AGENTRY_SHUTDOWN_GRACE_SECONDS", unit: "s" }],
    },
    "echo-delay": {
      kind: "duration",
      env: "AGENTRY_ECHO_DELAY",
      help: "echo provider: pretend the model takes this long",
      default: "0s",
      min: "0s",
      deprecated: [{ env: "AGENTRY_ECHO_DELAY_MS", unit: "ms" }],
    },
    strict: {
      kind: "bool",
      env: "AGENTRY_STRICT",
      help: "exit 2 on bad model settings instead of reporting them on /readyz",
      default: false,
    },
    "log-level": logLevelFlag,
  },
  {
    usage: "[serve] [options]",
    description: `The default agent process of an AgentRuntime: serves the agent HTTP API (serve, the default).

  agent dispatch --manifest <manifest.json> --step <name> [--agent-url <url>]
      runs one Pipeline step on an AgentRuntime and prints its output (agent dispatch --help)`,
  },
);

type Values = Exclude<ReturnType<typeof flags.parse>, "help">;
export type SettingName = keyof Values;

export const agentUsage = flags.usage;

export function loadAgentConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  warn?: Warn,
): AgentConfig | "help" {
  const v = flags.parse(argv, env, warn);
  if (v === "help") return "help";
  const get = (name: SettingName): string => {
    const value = v[name];
    return typeof value === "string" ? value : "";
  };
  const { model, problem } = modelSettings(get);
  const workspace = workspaceSettings(
    v.workspace ?? "",
    v["workspace-url"] ?? "",
    v["workspace-token-file"] ?? "",
  );
  for (const name of ["task-timeout", "max-task-timeout"] as const)
    if (v[name] % 1000 !== 0)
      throw new Error(`${flags.describe(name)} must be whole seconds, got ${formatDuration(v[name])}`);
  return {
    name: v.name,
    namespace: v.namespace ?? "",
    host: v.host,
    port: v.port,
    metricsAddr: v["metrics-addr"],
    model,
    modelProblem: problem,
    workspace: workspace.workspace,
    workspaceProblem: workspace.problem,
    trustDir: v["trust-dir"],
    pod:
      v["pod-name"] && v["pod-namespace"]
        ? { namespace: v["pod-namespace"], name: v["pod-name"] }
        : undefined,
    maxConcurrentTasks: v["max-concurrent-tasks"],
    defaultTaskTimeoutSeconds: v["task-timeout"] / 1000,
    maxTaskTimeoutSeconds: v["max-task-timeout"] / 1000,
    maxInputBytes: v["max-input-bytes"],
    maxFileBytes: v["max-file-bytes"],
    shutdownGraceSeconds: v["shutdown-grace"] / 1000,
    echoDelayMs: v["echo-delay"],
    strict: v.strict,
    logLevel: v["log-level"],
  };
}

/** The model settings, or the one line that says what to fix. */
export function modelSettings(get: (name: SettingName) => string): {
  model: ModelConfig | undefined;
  problem: string | undefined;
} {
  const provider = get("provider");
  const fail = (problem: string) => ({ model: undefined, problem });
  if (provider === "")
    return fail(
      "no model provider configured: set spec.model on the AgentRuntime (AGENTRY_MODEL_PROVIDER); provider echo makes a dry run without a model",
    );
  if (!(PROVIDERS as readonly string[]).includes(provider))
    return fail(
      `AGENTRY_MODEL_PROVIDER "${provider}" is not a known provider; use one of ${PROVIDERS.join(", ")}`,
    );
  const name = provider as ProviderName;
  if (!SUPPORTED[name])
    return fail(
      `provider ${name} is not supported by the default agent yet; use ${Object.keys(SUPPORTED).join(", ")} or your own agent image`,
    );
  const model = get("model") || (name === "echo" ? "echo" : "");
  if (model === "") return fail(`provider ${name} needs a model name: set spec.model.model (AGENTRY_MODEL)`);
  const endpoint = (get("endpoint") || DEFAULT_ENDPOINTS[name] || "").replace(/\/+$/, "");
  if (name !== "echo") {
    if (endpoint === "")
      return fail(`provider ${name} needs an endpoint: set spec.model.endpoint (AGENTRY_MODEL_ENDPOINT)`);
    if (!/^https?:\/\/\S+$/.test(endpoint))
      return fail(`AGENTRY_MODEL_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  }
  const apiKey = get("api-key") || undefined;
  if (KEY_REQUIRED.has(name) && !apiKey)
    return fail(
      `provider ${name} needs an API key: set spec.model.credentialsSecretRef to the Secret key that holds it (AGENTRY_MODEL_API_KEY is empty)`,
    );
  const maxOutputTokens = Number(get("max-output-tokens"));
  if (!Number.isInteger(maxOutputTokens) || maxOutputTokens < 1)
    return fail(`AGENTRY_MAX_OUTPUT_TOKENS must be a positive integer, got "${get("max-output-tokens")}"`);
  return {
    model: {
      provider: name,
      model,
      endpoint: name === "echo" ? "" : endpoint,
      apiKey,
      systemPrompt: get("system-prompt") || undefined,
      maxOutputTokens,
    },
    problem: undefined,
  };
}

/** AGENTRY_WORKSPACE_URL is a workspace's URL on its sandbox: the sandbox's base URL and the workspace id. */
export function workspaceSettings(
  name: string,
  url: string,
  tokenFile = "",
): { workspace: AgentConfig["workspace"]; problem: string | undefined } {
  if (url === "") return { workspace: undefined, problem: undefined };
  const parsed = parseWorkspaceUrl(url);
  if (!parsed)
    return {
      workspace: undefined,
      problem: `AGENTRY_WORKSPACE_URL must look like http://<host>:<port>/workspaces/<id>, got "${url}"`,
    };
  const { baseUrl, id } = parsed;
  return {
    workspace: { name: name || id, baseUrl, id, tokenFile: tokenFile || undefined },
    problem: undefined,
  };
}
