// Runs the real operator (operator/main.ts) as a child process against the test cluster,
// scoped to the test's namespaces, and gives the test its health port, logs and metrics.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./paths.ts";
import { freePort, waitFor } from "./process.ts";

export interface OperatorProcess {
  child: ChildProcess;
  port: number;
  brokerPort: number;
  logs: Record<string, unknown>[];
  /** Prometheus metrics text. */
  metrics(): Promise<string>;
  /** Sum of a counter's samples whose labels contain all of `labels`. */
  counter(name: string, labels?: Record<string, string>): Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface OperatorOptions {
  namespaces: string[];
  leaseNamespace?: string;
  leaderElect?: boolean;
  args?: string[];
  /** Another cluster than the run's (KUBECONFIG). */
  kubeconfig?: string;
  /** Run the compiled operator (dist/, `npm run build`) as the images do, not the sources through tsx. */
  compiled?: boolean;
  /**
   * The pod address map (PodBackends.mapFile) the operator dials through. Without one it
   * gets an empty map, so it dials no pod at all: no operator the tests start may reach
   * kwok's fake pod IPs.
   */
  podAddressMap?: string;
  /**
   * The store broker's port; a free one when omitted. An operator started again in place of
   * one that was killed passes the old one's (OperatorProcess.brokerPort): the fleets'
   * sandbox pods name its URL, so a new one would roll them out.
   */
  brokerPort?: number;
  /** Flags for node before the program, after OPERATOR_NODE_FLAGS (V8 flags that NODE_OPTIONS does not take). */
  nodeArgs?: string[];
}

/**
 * Node's flags for the operator, as Dockerfile.operator's ENTRYPOINT runs it (hack/dockerfiles.test.ts
 * holds the two equal): a young generation of 2 MiB semi-spaces instead of V8's 16, V8's
 * heap sized for memory over speed (`--optimize-for-size`: the old generation grows in smaller
 * steps), and neither Maglev nor Sparkplug (V8's middle and baseline compilers: their code and
 * compile memory, for a process that mostly waits; hot code still gets TurboFan).
 * bench/ANALYSIS.md has what each saves and costs.
 */
export const OPERATOR_NODE_FLAGS = [
  "--max-semi-space-size=2",
  "--optimize-for-size",
  "--no-maglev",
  "--no-sparkplug",
];

/**
 * The operator's environment beside it, as Dockerfile.operator's ENV sets it (held equal by the
 * same test): two glibc malloc arenas instead of one per thread up to 8 per core, whose freed
 * memory stays resident.
 */
export const OPERATOR_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

export async function startOperator(
  t: { after: (fn: () => Promise<void>) => void },
  options: OperatorOptions,
): Promise<OperatorProcess> {
  let podAddressMap = options.podAddressMap;
  if (!podAddressMap) {
    const dir = await mkdtemp(join(tmpdir(), "agentry-nopods-"));
    podAddressMap = join(dir, "pod-addresses.json");
    await writeFile(podAddressMap, "{}");
    t.after(() => rm(dir, { recursive: true, force: true }));
  }
  // The store broker on a free loopback port, at a URL the sandbox processes can reach.
  const brokerPort = options.brokerPort ?? (await freePort());
  const args = [
    ...(options.compiled
      ? // As Dockerfile.operator's ENTRYPOINT runs it.
        [...OPERATOR_NODE_FLAGS, ...(options.nodeArgs ?? []), join(repoRoot, "dist", "operator", "main.js")]
      : [...(options.nodeArgs ?? []), "--import", "tsx", join(repoRoot, "operator", "main.ts")]),
    `--namespaces=${options.namespaces.join(",")}`,
    `--lease-namespace=${options.leaseNamespace ?? options.namespaces[0]}`,
    `--leader-elect=${options.leaderElect ?? true}`,
    "--health-addr=127.0.0.1:0",
    "--log-level=debug",
    `--pod-address-map=${podAddressMap}`,
    `--broker-addr=127.0.0.1:${brokerPort}`,
    `--broker-url=http://127.0.0.1:${brokerPort}`,
    ...(options.args ?? []),
  ];
  const env = {
    ...process.env,
    ...OPERATOR_ENV,
    ...(options.kubeconfig ? { KUBECONFIG: options.kubeconfig } : {}),
  };
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  // Keep the operator's log beside the control plane's, which are kept when a run fails.
  const logDir = process.env.AGENTRY_CONTROLPLANE_DIR
    ? join(process.env.AGENTRY_CONTROLPLANE_DIR, "logs")
    : undefined;
  const file = logDir ? createWriteStream(join(logDir, `operator-${child.pid}.log`)) : undefined;
  createInterface({ input: child.stdout }).on("line", (line) => {
    file?.write(`${line}\n`);
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ message: line });
    }
  });
  createInterface({ input: child.stderr }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  const port = await waitFor(
    "operator to report its health port",
    () => {
      if (child.exitCode !== null)
        throw new Error(`operator exited with ${child.exitCode}: ${stderr.join("\n")}`);
      const start = logs.find((l) => l.message === "operator starting");
      return start ? Number(start.healthPort) : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return {
    child,
    port,
    brokerPort,
    logs,
    metrics,
    async counter(name, labels = {}) {
      const text = await metrics();
      let sum = 0;
      for (const line of text.split("\n")) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const ok = Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`));
        if (ok) sum += Number(m[3]);
      }
      return sum;
    },
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * A controller's count of writes (agentry_writes_total) once it stopped changing: two
 * readings `intervalMs` apart agree.
 */
export async function settledWrites(
  operator: OperatorProcess,
  controller: string,
  { intervalMs = 2500, timeoutMs = 60_000 }: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const writes = () => operator.counter("agentry_writes_total", { controller });
  let last = await writes();
  await waitFor(
    `${controller} writes to settle`,
    async () => {
      const now = await writes();
      const settled = now === last;
      last = now;
      return settled;
    },
    { intervalMs, timeoutMs },
  );
  return last;
}

/**
 * Lets a controller's writes settle, waits for `reconciles` more reconciles (resyncs), and
 * returns its write count before and after: equal when unchanged state causes no writes.
 */
export async function writesAcrossResyncs(
  operator: OperatorProcess,
  controller: string,
  reconciles = 20,
): Promise<{ before: number; after: number }> {
  const writes = () => operator.counter("agentry_writes_total", { controller });
  const before = await settledWrites(operator, controller);
  const start = await operator.counter("controller_runtime_reconcile_total", { controller });
  await waitFor(`${reconciles} more reconciles`, async () => {
    const n = await operator.counter("controller_runtime_reconcile_total", { controller });
    return n >= start + reconciles;
  });
  return { before, after: await writes() };
}
