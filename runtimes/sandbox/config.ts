// Sandbox runtime settings from flags, else AGENTRY_SANDBOX_* environment variables, else
// defaults; `--help` lists them.
import { podFlags } from "../../lib/cli/podflags.ts";
import { defineFlags, logLevelFlag, metricsAddrFlag, type Warn } from "../../lib/cli/flags.ts";
import { METRICS_PORT } from "../../contracts/metrics.ts";
import { SandboxEnv } from "../../contracts/sandbox.ts";
import { STORE_TOKEN_PATH, StoreEnv } from "../../contracts/store.ts";

export interface SandboxConfig {
  listen: { host: string; port: number };
  /** Where /metrics is served (Prometheus), apart from the API. */
  metricsAddr: { host: string; port: number };
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
  /** How long a call for a workspace not held here waits for it to wake. */
  wakeWaitSeconds: number;
}

const flags = defineFlags("sandbox", {
  listen: {
    kind: "addr",
    env: SandboxEnv.LISTEN,
    help: "host:port to serve on (port 0: any free port)",
    default: "0.0.0.0:8080",
  },
  "metrics-addr": metricsAddrFlag(SandboxEnv.METRICS_ADDR, METRICS_PORT),
  root: {
    kind: "string",
    env: SandboxEnv.ROOT,
    help: "directory holding the workspaces (created if missing)",
    default: "/workspaces",
  },
  ...podFlags,
  "max-workspaces": {
    kind: "int",
    min: 1,
    env: SandboxEnv.MAX_WORKSPACES,
    help: "workspaces this sandbox holds at most",
    default: 32,
  },
  "allow-load-override": {
    kind: "bool",
    env: "AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE",
    help: "serve PUT /debug/load to pin the reported load (tests only)",
  },
  "max-exec": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_MAX_EXEC",
    help: "longest (and default) command timeout",
    default: "10m",
    deprecated: [{ flag: "max-exec-seconds", env: "AGENTRY_SANDBOX_MAX_EXEC_SECONDS", unit: "s" }],
  },
  "max-output-bytes": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_MAX_OUTPUT_BYTES",
    help: "stdout/stderr kept per stream",
    default: 1048576,
  },
  "max-concurrent-exec": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_MAX_CONCURRENT_EXEC",
    help: "commands running at once in the sandbox",
    default: 8,
  },
  "max-concurrent-exec-per-workspace": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_MAX_CONCURRENT_EXEC_PER_WORKSPACE",
    help: "commands running at once in one workspace (default: half of --max-concurrent-exec, at least 1)",
  },
  "max-queued-exec-per-workspace": {
    kind: "int",
    min: 0,
    env: "AGENTRY_SANDBOX_MAX_QUEUED_EXEC_PER_WORKSPACE",
    help: "commands of one workspace waiting for a slot (429 beyond)",
    default: 16,
  },
  "wake-wait": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_WAKE_WAIT",
    help: "how long a call for a workspace this sandbox does not hold waits for it to wake (503 after it)",
    default: "30s",
  },
  "exec-queue-timeout": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_EXEC_QUEUE_TIMEOUT",
    help: "longest wait for a slot (429 after it)",
    default: "30s",
    deprecated: [{ flag: "exec-queue-seconds", env: "AGENTRY_SANDBOX_EXEC_QUEUE_SECONDS", unit: "s" }],
  },
  "exec-isolation": {
    kind: "string",
    choices: ["auto", "namespace", "session"],
    env: "AGENTRY_SANDBOX_EXEC_ISOLATION",
    help: "auto | namespace (PID namespace per command; needs root) | session",
    default: "auto",
  },
  "exec-uid": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_EXEC_UID",
    help: "when run as root: workspace n's commands run as this uid + n",
    default: 20000,
  },
  "exec-gid": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_EXEC_GID",
    help: "when run as root: workspace n's commands run as this gid + n (default: --exec-uid)",
  },
  "exec-max-processes": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_EXEC_MAX_PROCESSES",
    help: "RLIMIT_NPROC of commands (per workspace user; added to the runtime's own when shared)",
    default: 256,
  },
  "exec-max-open-files": {
    kind: "int",
    min: 8,
    env: "AGENTRY_SANDBOX_EXEC_MAX_OPEN_FILES",
    help: "RLIMIT_NOFILE of commands",
    default: 1024,
  },
  "exec-max-file-bytes": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_EXEC_MAX_FILE_BYTES",
    help: "RLIMIT_FSIZE of commands: the largest file one may write",
    default: 1073741824,
  },
  "exec-max-cpu-seconds": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_EXEC_MAX_CPU_SECONDS",
    help: "RLIMIT_CPU of commands: CPU seconds per process",
    default: 600,
  },
  "max-file-bytes": {
    kind: "int",
    min: 1,
    env: "AGENTRY_SANDBOX_MAX_FILE_BYTES",
    help: "largest file upload (413 beyond)",
    default: 67108864,
  },
  "shutdown-grace": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_SHUTDOWN_GRACE",
    help: "on SIGTERM, how long in-flight requests and commands may finish",
    default: "25s",
    min: "0s",
    deprecated: [
      { flag: "shutdown-grace-seconds", env: "AGENTRY_SANDBOX_SHUTDOWN_GRACE_SECONDS", unit: "s" },
    ],
  },
  "sample-interval": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_SAMPLE_INTERVAL",
    help: "cpu/memory sampling interval",
    default: "1s",
    deprecated: [
      { flag: "sample-interval-seconds", env: "AGENTRY_SANDBOX_SAMPLE_INTERVAL_SECONDS", unit: "s" },
    ],
  },
  "log-level": logLevelFlag,
  "store-broker": {
    kind: "string",
    env: StoreEnv.BROKER_URL,
    help: "URL of the operator's store broker: workspaces are restored from and flushed to the fleet's object store through it (unset: not durable)",
  },
  "store-token-file": {
    kind: "string",
    env: StoreEnv.TOKEN_FILE,
    help: "the pod's ServiceAccount token for the store broker",
    default: STORE_TOKEN_PATH,
  },
  "flush-quiet": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_FLUSH_QUIET",
    help: "a workspace is flushed once its writes have been quiet this long",
    default: "5s",
    deprecated: [{ flag: "flush-quiet-seconds", env: "AGENTRY_SANDBOX_FLUSH_QUIET_SECONDS", unit: "s" }],
  },
  "flush-timeout": {
    kind: "duration",
    env: "AGENTRY_SANDBOX_FLUSH_TIMEOUT",
    help: "longest one flush may take",
    default: "2m",
    deprecated: [{ flag: "flush-timeout-seconds", env: "AGENTRY_SANDBOX_FLUSH_TIMEOUT_SECONDS", unit: "s" }],
  },
});

export const sandboxUsage = flags.usage;

export function loadSandboxConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  warn?: Warn,
): SandboxConfig | "help" {
  const v = flags.parse(argv, env, warn);
  if (v === "help") return "help";
  const maxConcurrentExec = v["max-concurrent-exec"];
  const perWorkspace =
    v["max-concurrent-exec-per-workspace"] ?? Math.max(1, Math.floor(maxConcurrentExec / 2));
  if (perWorkspace > maxConcurrentExec)
    throw new Error(
      `--max-concurrent-exec-per-workspace (${perWorkspace}) must not exceed --max-concurrent-exec (${maxConcurrentExec})`,
    );
  const maxWorkspaces = v["max-workspaces"];
  const execUid = v["exec-uid"];
  const execGid = v["exec-gid"] ?? execUid;
  for (const [name, first] of [
    ["exec-uid", execUid],
    ["exec-gid", execGid],
  ] as const)
    if (first + maxWorkspaces - 1 > 0xfffffffe)
      throw new Error(`--${name} ${first} + --max-workspaces ${maxWorkspaces} leaves the 32-bit id range`);
  const seconds = (ms: number) => ms / 1000;
  return {
    listen: v.listen,
    metricsAddr: v["metrics-addr"],
    root: v.root,
    trustDir: v["trust-dir"],
    pod:
      v["pod-name"] && v["pod-namespace"]
        ? { namespace: v["pod-namespace"], name: v["pod-name"] }
        : undefined,
    maxWorkspaces,
    allowLoadOverride: v["allow-load-override"],
    maxExecSeconds: seconds(v["max-exec"]),
    maxOutputBytes: v["max-output-bytes"],
    maxConcurrentExec,
    maxConcurrentExecPerWorkspace: perWorkspace,
    maxQueuedExecPerWorkspace: v["max-queued-exec-per-workspace"],
    execQueueSeconds: seconds(v["exec-queue-timeout"]),
    wakeWaitSeconds: seconds(v["wake-wait"]),
    execIsolation: v["exec-isolation"] as SandboxConfig["execIsolation"],
    execUid,
    execGid,
    execLimits: {
      processes: v["exec-max-processes"],
      openFiles: v["exec-max-open-files"],
      fileBytes: v["exec-max-file-bytes"],
      cpuSeconds: v["exec-max-cpu-seconds"],
    },
    maxFileBytes: v["max-file-bytes"],
    shutdownGraceSeconds: seconds(v["shutdown-grace"]),
    sampleIntervalSeconds: seconds(v["sample-interval"]),
    logLevel: v["log-level"],
    storeBroker: parseBrokerUrl(v["store-broker"] ?? ""),
    storeTokenFile: v["store-token-file"],
    flushQuietSeconds: seconds(v["flush-quiet"]),
    flushTimeoutSeconds: seconds(v["flush-timeout"]),
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
