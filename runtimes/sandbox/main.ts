// agentry sandbox runtime: the process in every sandbox pod of a SandboxFleet (and, in
// tests, a plain local process). Wiring only: config, store, how commands are confined
// (checked by running one), load sampler, exec pool, HTTP server, and a graceful SIGTERM
// (stop accepting, let in-flight requests and commands finish within the grace period,
// then exit 0).
import { once } from "node:events";
import { createServer } from "../../lib/http/nodehttp.ts";
import type { AddressInfo } from "node:net";
import { configOrExit } from "../../lib/cli/config.ts";
import { closeGracefully } from "../../lib/http/shutdown.ts";
import { errorMessage, createLogger } from "../../lib/log.ts";
import { TokenVerifier } from "../../lib/tokens.ts";
import { loadSandboxConfig, sandboxUsage } from "./config.ts";
import type { Isolation } from "./confine.ts";
import { ExecPool, probeIsolation } from "./exec.ts";
import { LoadSampler } from "./load.ts";
import { SandboxApp } from "./server.ts";
import { FairSlots } from "./slots.ts";
import { unsearchableParent, WorkspaceStore } from "./workspaces.ts";
import { Backing } from "./backing.ts";
import { SandboxMetrics } from "./metrics.ts";
import { startMetricsServer } from "../../lib/http/health.ts";
import { BrokeredObjects } from "./brokered.ts";
import { DurableStore } from "./durable.ts";

const cfg = configOrExit("sandbox", loadSandboxConfig, sandboxUsage);
const log = createLogger(cfg.logLevel, "sandbox");

// As root, each workspace's commands run as a user of their own; otherwise as ours.
const asRoot = process.getuid?.() === 0;
const ids = asRoot ? { uid: cfg.execUid, gid: cfg.execGid } : undefined;
let store: WorkspaceStore;
try {
  store = await WorkspaceStore.open(cfg.root, cfg.maxWorkspaces, ids);
} catch (err) {
  log.error("cannot use the workspace root; check --root and its permissions", {
    root: cfg.root,
    error: errorMessage(err),
  });
  process.exit(1);
}

const candidates: Isolation[] =
  cfg.execIsolation === "auto" ? (asRoot ? ["namespace", "session"] : ["session"]) : [cfg.execIsolation];
const refused: Record<string, string> = {};
let isolation: Isolation | undefined;
for (const candidate of candidates) {
  const why =
    candidate === "namespace" && !asRoot
      ? "a PID namespace per command needs the runtime to run as root"
      : await probeIsolation(candidate, cfg.execLimits, store.root, ids);
  if (!why) {
    isolation = candidate;
    break;
  }
  refused[candidate] = why;
}
if (!isolation) {
  log.error("cannot run commands confined; the image needs util-linux (unshare, setpriv, prlimit) and perl", {
    isolation: cfg.execIsolation,
    refused,
  });
  process.exit(1);
}
const hidden = ids ? await unsearchableParent(store.root) : undefined;
if (hidden)
  log.warn(
    "commands cannot reach their workspace by absolute path: a parent of --root is not searchable by others (chmod o+x)",
    {
      directory: hidden,
    },
  );

const load = new LoadSampler({ intervalMs: cfg.sampleIntervalSeconds * 1000 });
await load.start();
const verifier = new TokenVerifier({ dir: cfg.trustDir });
const pool = new ExecPool({
  isolation,
  limits: cfg.execLimits,
  slots: new FairSlots({
    total: cfg.maxConcurrentExec,
    perKey: cfg.maxConcurrentExecPerWorkspace,
    queuePerKey: cfg.maxQueuedExecPerWorkspace,
    maxWaitMs: cfg.execQueueSeconds * 1000,
  }),
});
// The workspaces' object store, reached through the operator's broker (no credentials here).
const metrics = new SandboxMetrics({ workspaces: () => store.count });
const backing = new Backing({
  onFlush: (bytes) => metrics.flush(bytes),
  ...(cfg.storeBroker
    ? {
        store: new DurableStore({
          objects: new BrokeredObjects({ brokerUrl: cfg.storeBroker, tokenFile: cfg.storeTokenFile }),
        }),
      }
    : {}),
  log,
  debounceMs: cfg.flushQuietSeconds * 1000,
  flushTimeoutMs: cfg.flushTimeoutSeconds * 1000,
});
// Workspaces already on disk (the runtime restarted in its pod) are kept and flushed.
for (const w of store.list()) backing.adopt(w.id, store.dir(w.id));
const app = new SandboxApp({
  metrics,
  backing,
  store,
  pool,
  load,
  log,
  verifier,
  pod: cfg.pod,
  allowLoadOverride: cfg.allowLoadOverride,
  maxExecSeconds: cfg.maxExecSeconds,
  maxOutputBytes: cfg.maxOutputBytes,
  maxFileBytes: cfg.maxFileBytes,
  wakeWaitMs: cfg.wakeWaitSeconds * 1000,
});
const server = createServer(app.handle);
server.once("error", (err) => {
  log.error("cannot listen; check --listen", { listen: cfg.listen, error: err.message });
  process.exit(1);
});
server.listen(cfg.listen.port, cfg.listen.host);
await once(server, "listening");
const { port } = server.address() as AddressInfo;
// Prometheus scrapes /metrics here, apart from the API (whose every call needs a token).
const metricsServer = await startMetricsServer(cfg.metricsAddr, metrics.registry).catch((err: unknown) => {
  log.error("cannot serve /metrics; check --metrics-addr", {
    metricsAddr: cfg.metricsAddr,
    error: String(err),
  });
  process.exit(1);
});
log.info("sandbox listening", {
  host: cfg.listen.host,
  port,
  metricsPort: metricsServer.port,
  root: store.root,
  workspaces: store.count,
  maxWorkspaces: cfg.maxWorkspaces,
  trustDir: cfg.trustDir,
  trustedKeys: verifier.size,
  pod: cfg.pod ? `${cfg.pod.namespace}/${cfg.pod.name}` : null,
  store: cfg.storeBroker ? `through the broker at ${cfg.storeBroker}` : "none: workspaces are not durable",
  exec: {
    isolation,
    users: ids
      ? `workspace n runs as uid ${ids.uid}+n, gid ${ids.gid}+n`
      : `the runtime's own uid ${process.getuid?.() ?? "?"}`,
    ...(Object.keys(refused).length ? { refused } : {}),
    limits: cfg.execLimits,
    slots: { total: cfg.maxConcurrentExec, perWorkspace: cfg.maxConcurrentExecPerWorkspace },
  },
});
if (verifier.size === 0)
  log.warn(
    "no trusted public key yet: every call but /healthz and /readyz is refused until one is in the trust dir",
    {
      trustDir: cfg.trustDir,
    },
  );
if (!cfg.pod)
  log.warn("no pod identity (AGENTRY_POD_NAME, AGENTRY_POD_NAMESPACE): only workspace tokens are accepted");

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("shutting down: finishing in-flight requests", { signal, graceSeconds: cfg.shutdownGraceSeconds });
  app.draining = true;
  app.closing = true;
  // Flush every workspace while requests finish: what is written before the flush starts survives.
  const flushed = backing.enabled
    ? backing.flushAll().then((failed) => {
        if (failed.length)
          log.error("workspaces not flushed before exit: changes since their last flush are lost", {
            failed,
          });
        else log.info("every workspace flushed");
      })
    : Promise.resolve();
  await closeGracefully(server, cfg.shutdownGraceSeconds * 1000, () => {
    log.info("grace period over: killing running commands", { commands: pool.active });
    pool.abort();
  });
  // Commands that ran to the end may have written more: one more flush of what changed.
  await flushed;
  if (backing.enabled) await backing.flushAll();
  load.stop();
  log.info("sandbox stopped");
  process.exit(0);
}
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => void shutdown(signal));
