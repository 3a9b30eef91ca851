// agentry agent runtime: the default agent process of an AgentRuntime (`serve`, the
// default) and the dispatcher of Pipeline steps that name an AgentRuntime (`dispatch`).
// Wiring only: config, provider, HTTP server, workspace check, graceful SIGTERM (stop
// accepting, let running tasks finish within the grace period, then exit 0).
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer } from "../../lib/http/nodehttp.ts";
import type { AddressInfo } from "node:net";
import { configOrExit } from "../../lib/cli/config.ts";
import { closeGracefully } from "../../lib/http/shutdown.ts";
import { errorMessage, createLogger } from "../../lib/log.ts";
import { readTokenFile } from "../../lib/tokens.ts";
import { agentUsage, loadAgentConfig } from "./config.ts";
import { dispatch, dispatchOptions, DispatchError, dispatchUsage, loadStep } from "./dispatch.ts";
import { AgentApp } from "./server.ts";
import { AgentMetrics } from "./metrics.ts";
import { startMetricsServer } from "../../lib/http/health.ts";

const argv = process.argv.slice(2);
const command = argv[0] === "serve" || argv[0] === "dispatch" ? argv.shift() : "serve";
if (command === "dispatch") await runDispatch(argv);
else await serve(argv);

async function runDispatch(args: string[]): Promise<void> {
  try {
    const options = dispatchOptions(args);
    if (options === "help") {
      process.stdout.write(dispatchUsage());
      process.exit(0);
    }
    const { step, input, timeoutSeconds } = await loadStep(options);
    const agent = step.agentRef!.name;
    if (options.agentUrl && !options.tokenFile)
      throw new DispatchError(
        `no token for AgentRuntime ${agent}: AGENTRY_AGENT_TOKEN_FILE is not set (the operator mounts it into the run's pod)`,
        2,
      );
    const result = await dispatch(options.agentUrl, agent, input, timeoutSeconds, {
      token: () => readTokenFile(options.tokenFile),
    });
    process.stdout.write(result.output.endsWith("\n") ? result.output : `${result.output}\n`);
    process.exit(0);
  } catch (err) {
    const reason = errorMessage(err).replace(/\s*\n\s*/g, " ");
    process.stderr.write(`${reason}\n`);
    // Kubernetes shows this file as the terminated container's message (the Job's failure reason).
    try {
      writeFileSync(process.env.AGENTRY_TERMINATION_LOG ?? "/dev/termination-log", reason);
    } catch {
      // not in a pod: stderr is enough
    }
    process.exit(err instanceof DispatchError ? err.code : 1);
  }
}

async function serve(args: string[]): Promise<void> {
  const cfg = configOrExit("agent", () => loadAgentConfig(args), agentUsage);
  const problem = cfg.modelProblem ?? cfg.workspaceProblem;
  if (problem && cfg.strict) {
    process.stderr.write(`agentry agent: ${problem}\n`);
    process.exit(2);
  }
  const log = createLogger(cfg.logLevel, "agent");
  if (problem) log.error("not ready until this is fixed (GET /readyz reports it)", { reason: problem });

  // Read at each scrape, which starts after `app` exists.
  const metrics: AgentMetrics = new AgentMetrics({ running: (): number => app.running });
  const app = new AgentApp(cfg, log, { metrics });
  const server = createServer(app.handle);
  server.once("error", (err) => {
    log.error("cannot listen; check AGENTRY_PORT and --host", {
      host: cfg.host,
      port: cfg.port,
      error: err.message,
    });
    process.exit(1);
  });
  server.listen(cfg.port, cfg.host);
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
  log.info("agent listening", {
    metricsPort: metricsServer.port,
    name: cfg.name,
    namespace: cfg.namespace,
    host: cfg.host,
    port,
    provider: cfg.model?.provider,
    model: cfg.model?.model,
    workspace: cfg.workspace?.name,
    readiness: app.readiness().status,
  });

  // Until the sandbox holds the workspace, /readyz says "starting" and why.
  const workspaceCheck = setInterval(() => {
    void app.checkWorkspace().then((found) => {
      if (!found) return;
      clearInterval(workspaceCheck);
      if (cfg.workspace) log.info("workspace found", { workspace: cfg.workspace.name });
    });
  }, 2000);
  if (await app.checkWorkspace()) clearInterval(workspaceCheck);

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    clearInterval(workspaceCheck);
    log.info("shutting down: finishing running tasks", {
      signal,
      tasks: app.running,
      graceSeconds: cfg.shutdownGraceSeconds,
    });
    app.stopping = true;
    await closeGracefully(server, cfg.shutdownGraceSeconds * 1000, () => {
      log.info("grace period over: aborting running tasks", { tasks: app.running });
      app.abortAll();
    });
    log.info("agent stopped");
    process.exit(0);
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => void shutdown(signal));
}
