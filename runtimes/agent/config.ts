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
import { parseArgs } from "node:util";
import { ModelSettings } from "../../api/v1alpha1/agentruntime.ts";
import { AgentEnv } from "../../contracts/agent.ts";
import { parseWorkspaceUrl } from "../../contracts/sandbox.ts";
import { DEFAULT_TRUST_DIR, PodIdentityEnv, TRUST_DIR_ENV } from "../../contracts/tokens.ts";

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

interface Setting {
  env: string;
  help: string;
  default?: string;
  flag?: string;
}

/** Every setting, in the order --help lists them. */
const SETTINGS = {
  name: { env: AgentEnv.NAME, help: "name of the AgentRuntime", default: "agent" },
  namespace: { env: AgentEnv.NAMESPACE, help: "namespace of the AgentRuntime", default: "" },
  host: { env: "AGENTRY_HOST", flag: "host", help: "address to listen on", default: "0.0.0.0" },
  port: { env: AgentEnv.PORT, flag: "port", help: "port to listen on (0: any free port)", default: "8080" },
  provider: {
    env: AgentEnv.MODEL_PROVIDER,
    help: `model provider: ${PROVIDERS.join(", ")}`,
  },
  model: { env: AgentEnv.MODEL, help: "model name as the provider knows it" },
  endpoint: {
    env: AgentEnv.MODEL_ENDPOINT,
    help: "base URL of the provider API (defaults for openai, anthropic, ollama)",
  },
  apiKey: { env: AgentEnv.MODEL_API_KEY, help: "provider API key (from the credentials Secret)" },
  systemPrompt: { env: "AGENTRY_SYSTEM_PROMPT", help: "system prompt sent with every task" },
  maxOutputTokens: {
    env: "AGENTRY_MAX_OUTPUT_TOKENS",
    help: "largest answer asked of the model",
    default: "4096",
  },
  workspace: { env: AgentEnv.WORKSPACE, help: "name of the Workspace the agent works in" },
  workspaceUrl: {
    env: AgentEnv.WORKSPACE_URL,
    help: "the workspace on its sandbox: http://<ip>:<port>/workspaces/<id>",
  },
  workspaceTokenFile: {
    env: AgentEnv.WORKSPACE_TOKEN_FILE,
    help: "file holding the token for the workspace (mounted by the operator, re-read at each call)",
  },
  trustDir: {
    env: TRUST_DIR_ENV,
    help: "directory of trusted public keys (PEM); tokens signed by them open the API",
    default: DEFAULT_TRUST_DIR,
  },
  podName: { env: PodIdentityEnv.NAME, help: "this pod's name (downward API)" },
  podNamespace: { env: PodIdentityEnv.NAMESPACE, help: "this pod's namespace (downward API)" },
  maxConcurrentTasks: {
    env: "AGENTRY_MAX_CONCURRENT_TASKS",
    flag: "max-concurrent-tasks",
    help: "tasks running at once (429 beyond)",
    default: "4",
  },
  taskTimeout: {
    env: "AGENTRY_TASK_TIMEOUT_SECONDS",
    help: "time limit of a task that names none",
    default: "300",
  },
  maxTaskTimeout: {
    env: "AGENTRY_MAX_TASK_TIMEOUT_SECONDS",
    help: "largest timeoutSeconds a task may ask for",
    default: "3600",
  },
  maxInputBytes: { env: "AGENTRY_MAX_INPUT_BYTES", help: "largest task body", default: "1048576" },
  maxFileBytes: { env: "AGENTRY_MAX_FILE_BYTES", help: "largest workspace file upload", default: "16777216" },
  shutdownGrace: {
    env: "AGENTRY_SHUTDOWN_GRACE_SECONDS",
    flag: "shutdown-grace-seconds",
    help: "on SIGTERM, how long running tasks may finish",
    default: "25",
  },
  echoDelay: {
    env: "AGENTRY_ECHO_DELAY_MS",
    help: "echo provider: pretend the model takes this long",
    default: "0",
  },
  strict: {
    env: "AGENTRY_STRICT",
    flag: "strict",
    help: "exit 2 on bad model settings instead of reporting them on /readyz",
    default: "false",
  },
  logLevel: { env: "AGENTRY_LOG_LEVEL", flag: "log-level", help: "error|warn|info|debug", default: "info" },
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

export function agentUsage(): string {
  const rows = Object.values(SETTINGS).map((s: Setting) => {
    const name = s.flag ? `--${s.flag}, ${s.env}` : s.env;
    return `  ${name.padEnd(48)} ${s.help}${s.default ? ` [${s.default}]` : ""}`;
  });
  return `agentry agent runtime

Usage:
  agent [serve] [flags]      serve the agent HTTP API (default)
  agent dispatch --manifest <manifest.json> --step <name> [--agent-url <url>]
                             run one Pipeline step on an AgentRuntime and print its output

Settings (flag, environment variable):
${rows.join("\n")}
  --help                                           print this help
`;
}

export function loadAgentConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentConfig | "help" {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const s of Object.values(SETTINGS) as Setting[])
    if (s.flag) options[s.flag] = { type: s.flag === "strict" ? "boolean" : "string" };
  const values = parseArgs({ args: argv, options, strict: true }).values as Record<
    string,
    string | boolean | undefined
  >;
  if (values.help) return "help";
  const get = (name: SettingName): string => {
    const s: Setting = SETTINGS[name];
    const v = s.flag ? values[s.flag] : undefined;
    if (typeof v === "string") return v;
    if (v === true) return "true";
    return (env[s.env] ?? "").trim() || s.default || "";
  };
  const int = (name: SettingName, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = get(name);
    const n = Number(text);
    if (text === "" || !Number.isInteger(n) || n < min || n > max)
      throw new Error(`${describe(name)} must be an integer from ${min} to ${max}, got "${text}"`);
    return n;
  };
  const strictText = get("strict").toLowerCase();
  if (!["true", "false", "1", "0"].includes(strictText))
    throw new Error(`${describe("strict")} must be true or false, got "${strictText}"`);
  const { model, problem } = modelSettings(get);
  const workspace = workspaceSettings(get("workspace"), get("workspaceUrl"), get("workspaceTokenFile"));
  return {
    name: get("name"),
    namespace: get("namespace"),
    host: get("host"),
    port: int("port", 0, 65535),
    model,
    modelProblem: problem,
    workspace: workspace.workspace,
    workspaceProblem: workspace.problem,
    trustDir: get("trustDir"),
    pod:
      get("podName") && get("podNamespace")
        ? { namespace: get("podNamespace"), name: get("podName") }
        : undefined,
    maxConcurrentTasks: int("maxConcurrentTasks", 1),
    defaultTaskTimeoutSeconds: int("taskTimeout", 1),
    maxTaskTimeoutSeconds: int("maxTaskTimeout", 1),
    maxInputBytes: int("maxInputBytes", 1),
    maxFileBytes: int("maxFileBytes", 1),
    shutdownGraceSeconds: int("shutdownGrace", 0),
    echoDelayMs: int("echoDelay", 0),
    strict: strictText === "true" || strictText === "1",
    logLevel: get("logLevel"),
  };
}

function describe(name: SettingName): string {
  const s: Setting = SETTINGS[name];
  return s.flag ? `--${s.flag} (${s.env})` : s.env;
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
  const apiKey = get("apiKey") || undefined;
  if (KEY_REQUIRED.has(name) && !apiKey)
    return fail(
      `provider ${name} needs an API key: set spec.model.credentialsSecretRef to the Secret key that holds it (AGENTRY_MODEL_API_KEY is empty)`,
    );
  const maxOutputTokens = Number(get("maxOutputTokens"));
  if (!Number.isInteger(maxOutputTokens) || maxOutputTokens < 1)
    return fail(`AGENTRY_MAX_OUTPUT_TOKENS must be a positive integer, got "${get("maxOutputTokens")}"`);
  return {
    model: {
      provider: name,
      model,
      endpoint: name === "echo" ? "" : endpoint,
      apiKey,
      systemPrompt: get("systemPrompt") || undefined,
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
