// Sandbox runtime settings from flags, else AGENTRY_SANDBOX_* environment variables, else
// defaults; `--help` lists them.
import { parseArgs } from "node:util";
import { SandboxEnv } from "../../contracts/sandbox.ts";
import { DEFAULT_TRUST_DIR, PodIdentityEnv, TRUST_DIR_ENV } from "../../contracts/tokens.ts";
import { STORE_TOKEN_PATH, StoreEnv } from "../../contracts/store.ts";

export interface SandboxConfig {
  listen: { host: string; port: number };
  root: string;
  trustDir: string;
  /** This pod (downward API): tokens for it open the pod's routes. */
  pod: { namespace: string; name: string } | undefined;
  maxWorkspaces: number;
  allowLoadOverride: boolean;
  maxExecSeconds: number;
  maxOutputBytes: number;
  maxConcurrentExec: number;
  maxConcurrentExecPerWorkspace: number;
  maxQueuedExecPerWorkspace: number;
  execQueueSeconds: number;
  execIsolation: "auto" | "namespace" | "session";
  /** First uid/gid of the workspaces' users when the runtime runs as root. */
  execUid: number;
  execGid: number;
  execLimits: { processes: number; openFiles: number; fileBytes: number; cpuSeconds: number };
  maxFileBytes: number;
  shutdownGraceSeconds: number;
  sampleIntervalSeconds: number;
  logLevel: string;
  /** The operator's store broker; undefined: no store, workspaces are not durable. */
  storeBroker: string | undefined;
  storeTokenFile: string;
  flushQuietSeconds: number;
  flushTimeoutSeconds: number;
}

interface Flag {
  env: string;
  help: string;
  default?: string;
  boolean?: true;
}

const FLAGS = {
  listen: {
    env: SandboxEnv.LISTEN,
    help: "host:port to serve on (port 0: any free port)",
    default: "0.0.0.0:8080",
  },
  root: {
    env: SandboxEnv.ROOT,
    help: "directory holding the workspaces (created if missing)",
    default: "/workspaces",
  },
  "trust-dir": {
    env: TRUST_DIR_ENV,
    help: "directory of trusted public keys (PEM); tokens signed by them open the API",
    default: DEFAULT_TRUST_DIR,
  },
  "pod-name": { env: PodIdentityEnv.NAME, help: "this pod's name (downward API)" },
  "pod-namespace": { env: PodIdentityEnv.NAMESPACE, help: "this pod's namespace (downward API)" },
  "max-workspaces": {
    env: SandboxEnv.MAX_WORKSPACES,
    help: "workspaces this sandbox holds at most",
    default: "32",
  },
  "allow-load-override": {
    env: "AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE",
    help: "serve PUT /debug/load to pin the reported load (tests only)",
    boolean: true,
  },
  "max-exec-seconds": {
    env: "AGENTRY_SANDBOX_MAX_EXEC_SECONDS",
    help: "longest (and default) command timeout",
    default: "600",
  },
  "max-output-bytes": {
    env: "AGENTRY_SANDBOX_MAX_OUTPUT_BYTES",
    help: "stdout/stderr kept per stream",
    default: "1048576",
  },
  "max-concurrent-exec": {
    env: "AGENTRY_SANDBOX_MAX_CONCURRENT_EXEC",
    help: "commands running at once in the sandbox",
    default: "8",
  },
  "max-concurrent-exec-per-workspace": {
    env: "AGENTRY_SANDBOX_MAX_CONCURRENT_EXEC_PER_WORKSPACE",
    help: "commands running at once in one workspace (default: half of --max-concurrent-exec, at least 1)",
  },
  "max-queued-exec-per-workspace": {
    env: "AGENTRY_SANDBOX_MAX_QUEUED_EXEC_PER_WORKSPACE",
    help: "commands of one workspace waiting for a slot (429 beyond)",
    default: "16",
  },
  "exec-queue-seconds": {
    env: "AGENTRY_SANDBOX_EXEC_QUEUE_SECONDS",
    help: "longest wait for a slot (429 after it)",
    default: "30",
  },
  "exec-isolation": {
    env: "AGENTRY_SANDBOX_EXEC_ISOLATION",
    help: "auto | namespace (PID namespace per command; needs root) | session",
    default: "auto",
  },
  "exec-uid": {
    env: "AGENTRY_SANDBOX_EXEC_UID",
    help: "when run as root: workspace n's commands run as this uid + n",
    default: "20000",
  },
  "exec-gid": {
    env: "AGENTRY_SANDBOX_EXEC_GID",
    help: "when run as root: workspace n's commands run as this gid + n (default: --exec-uid)",
  },
  "exec-max-processes": {
    env: "AGENTRY_SANDBOX_EXEC_MAX_PROCESSES",
    help: "RLIMIT_NPROC of commands (per workspace user; added to the runtime's own when shared)",
    default: "256",
  },
  "exec-max-open-files": {
    env: "AGENTRY_SANDBOX_EXEC_MAX_OPEN_FILES",
    help: "RLIMIT_NOFILE of commands",
    default: "1024",
  },
  "exec-max-file-bytes": {
    env: "AGENTRY_SANDBOX_EXEC_MAX_FILE_BYTES",
    help: "RLIMIT_FSIZE of commands: the largest file one may write",
    default: "1073741824",
  },
  "exec-max-cpu-seconds": {
    env: "AGENTRY_SANDBOX_EXEC_MAX_CPU_SECONDS",
    help: "RLIMIT_CPU of commands: CPU seconds per process",
    default: "600",
  },
  "max-file-bytes": {
    env: "AGENTRY_SANDBOX_MAX_FILE_BYTES",
    help: "largest file upload (413 beyond)",
    default: "67108864",
  },
  "shutdown-grace-seconds": {
    env: "AGENTRY_SANDBOX_SHUTDOWN_GRACE_SECONDS",
    help: "on SIGTERM, how long in-flight requests and commands may finish",
    default: "25",
  },
  "sample-interval-seconds": {
    env: "AGENTRY_SANDBOX_SAMPLE_INTERVAL_SECONDS",
    help: "cpu/memory sampling interval",
    default: "1",
  },
  "log-level": { env: "AGENTRY_LOG_LEVEL", help: "error|warn|info|debug", default: "info" },
  "store-broker": {
    env: StoreEnv.BROKER_URL,
    help: "URL of the operator's store broker: workspaces are restored from and flushed to the fleet's object store through it (unset: not durable)",
  },
  "store-token-file": {
    env: StoreEnv.TOKEN_FILE,
    help: "the pod's ServiceAccount token for the store broker",
    default: STORE_TOKEN_PATH,
  },
  "flush-quiet-seconds": {
    env: "AGENTRY_SANDBOX_FLUSH_QUIET_SECONDS",
    help: "a workspace is flushed once its writes have been quiet this long",
    default: "5",
  },
  "flush-timeout-seconds": {
    env: "AGENTRY_SANDBOX_FLUSH_TIMEOUT_SECONDS",
    help: "longest one flush may take",
    default: "120",
  },
} satisfies Record<string, Flag>;

type FlagName = keyof typeof FLAGS;

export function sandboxUsage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]: [string, Flag]) => {
    const def = f.default !== undefined ? ` [${f.default}]` : "";
    return `  --${name.padEnd(34)} ${f.help} (${f.env})${def}`;
  });
  return `agentry sandbox runtime\n\nOptions:\n${lines.join("\n")}\n  --${"help".padEnd(34)} print this help\n`;
}

export function loadSandboxConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): SandboxConfig | "help" {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([name, f]: [string, Flag]) => [
      name,
      { type: f.boolean ? "boolean" : "string" },
    ]),
  ) as Record<string, { type: "boolean" | "string" }>;
  const values = parseArgs({ args: argv, options: { ...options, help: { type: "boolean" } }, strict: true })
    .values as Record<string, string | boolean | undefined>;
  if (values.help) return "help";
  const get = (name: FlagName): string => {
    const v = values[name];
    if (typeof v === "string") return v;
    if (v === true) return "true";
    const f: Flag = FLAGS[name];
    return env[f.env] || f.default || "";
  };
  const int = (name: FlagName, min: number): number => {
    const text = get(name);
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} must be an integer >= ${min}, got "${text}"`);
    return n;
  };
  const seconds = (name: FlagName, allowZero = false): number => {
    const text = get(name);
    const n = Number(text);
    if (text === "" || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero))
      throw new Error(`--${name} must be a number of seconds ${allowZero ? ">= 0" : "> 0"}, got "${text}"`);
    return n;
  };
  const isolation = get("exec-isolation");
  if (isolation !== "auto" && isolation !== "namespace" && isolation !== "session")
    throw new Error(`--exec-isolation must be auto, namespace or session, got "${isolation}"`);
  const maxConcurrentExec = int("max-concurrent-exec", 1);
  const perWorkspace = get("max-concurrent-exec-per-workspace")
    ? int("max-concurrent-exec-per-workspace", 1)
    : Math.max(1, Math.floor(maxConcurrentExec / 2));
  if (perWorkspace > maxConcurrentExec)
    throw new Error(
      `--max-concurrent-exec-per-workspace (${perWorkspace}) must not exceed --max-concurrent-exec (${maxConcurrentExec})`,
    );
  const maxWorkspaces = int("max-workspaces", 1);
  const execUid = int("exec-uid", 1);
  const execGid = get("exec-gid") ? int("exec-gid", 1) : execUid;
  for (const [name, first] of [
    ["exec-uid", execUid],
    ["exec-gid", execGid],
  ] as const)
    if (first + maxWorkspaces - 1 > 0xfffffffe)
      throw new Error(`--${name} ${first} + --max-workspaces ${maxWorkspaces} leaves the 32-bit id range`);
  const override = get("allow-load-override").toLowerCase();
  if (!["", "true", "false", "1", "0"].includes(override))
    throw new Error(
      `--allow-load-override (AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE) must be true or false, got "${override}"`,
    );
  return {
    listen: parseListen(get("listen")),
    root: get("root"),
    trustDir: get("trust-dir"),
    pod:
      get("pod-name") && get("pod-namespace")
        ? { namespace: get("pod-namespace"), name: get("pod-name") }
        : undefined,
    maxWorkspaces,
    allowLoadOverride: override === "true" || override === "1",
    maxExecSeconds: seconds("max-exec-seconds"),
    maxOutputBytes: int("max-output-bytes", 1),
    maxConcurrentExec,
    maxConcurrentExecPerWorkspace: perWorkspace,
    maxQueuedExecPerWorkspace: int("max-queued-exec-per-workspace", 0),
    execQueueSeconds: seconds("exec-queue-seconds"),
    execIsolation: isolation,
    execUid,
    execGid,
    execLimits: {
      processes: int("exec-max-processes", 1),
      openFiles: int("exec-max-open-files", 8),
      fileBytes: int("exec-max-file-bytes", 1),
      cpuSeconds: int("exec-max-cpu-seconds", 1),
    },
    maxFileBytes: int("max-file-bytes", 1),
    shutdownGraceSeconds: seconds("shutdown-grace-seconds", true),
    sampleIntervalSeconds: seconds("sample-interval-seconds"),
    logLevel: get("log-level"),
    storeBroker: parseBrokerUrl(get("store-broker")),
    storeTokenFile: get("store-token-file"),
    flushQuietSeconds: seconds("flush-quiet-seconds"),
    flushTimeoutSeconds: seconds("flush-timeout-seconds"),
  };
}

function parseBrokerUrl(text: string): string | undefined {
  if (!text) return undefined;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`--store-broker must be an http(s) URL, got "${text}"`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new Error(`--store-broker must be an http(s) URL, got "${text}"`);
  return text;
}

/** "host:port", "[::1]:port" or ":port". */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`--listen must be host:port (port 0-65535), got "${text}"`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}
