// agentry admission webhook entry point: wiring only. Same image as the operator:
// `node webhook/main.ts --help` lists the flags.
import { readFileSync } from "node:fs";
import { KubeConfig } from "../lib/kube/kubeconfig.ts";
import { KubeClient } from "../lib/kube/client.ts";
import { errorMessage, createLogger } from "../lib/log.ts";
import { expiry } from "./certs.ts";
import { loadConfig, usage } from "./config.ts";
import { configOrExit } from "../lib/cli/config.ts";
import { ensureConfigurations } from "./configurations.ts";
import { kubeLookup } from "../lib/admission/lookup.ts";
import { WebhookMetrics } from "./metrics.ts";
import { createApp, startServer } from "./server.ts";
import { CertDirTls, SelfManagedTls, type TlsSource } from "./tls.ts";

const cfg = configOrExit("webhook", loadConfig, usage);
const log = createLogger(cfg.logLevel, "webhook");
const metrics = new WebhookMetrics();
const kc = KubeConfig.fromDefault();
const client = new KubeClient(kc, { userAgent: "agentry-webhook" });

// The first publish applies the configurations whatever they hold (flags may have changed).
let published = false;
const publishCaBundle = async (caBundle: string): Promise<boolean> => {
  if (!cfg.manageConfigurations) return true;
  const trusted = await ensureConfigurations(client, cfg, caBundle, !published);
  published = true;
  return trusted;
};

const tls: TlsSource = cfg.certDir
  ? new CertDirTls(cfg.certDir, log, publishCaBundle)
  : new SelfManagedTls(
      client,
      {
        secret: cfg.certSecret,
        hosts: cfg.certHosts,
        validityMs: cfg.certValidityMs,
        rotateBeforeMs: cfg.certRotateBeforeMs,
        publishCaBundle,
        onRotate: () => metrics.rotations.inc(),
      },
      log,
    );

let shuttingDown = false;
try {
  await tls.start();
} catch (err) {
  log.error("cannot get a serving certificate", { error: errorMessage(err) });
  process.exit(1);
}
const first = tls.current();
if (!first) {
  log.error("no serving certificate: another replica is creating it; restarting");
  process.exit(1);
}
let clientCa: string | undefined;
if (cfg.clientCaFile) {
  try {
    clientCa = readFileSync(cfg.clientCaFile, "utf8");
  } catch (err) {
    log.error("cannot read --client-ca-file", {
      file: cfg.clientCaFile,
      error: errorMessage(err),
    });
    process.exit(1);
  }
}
const app = createApp({
  lookup: kubeLookup(client, cfg.lookupTimeoutMs, cfg.checkSecretRefs),
  ...(clientCa ? { clientAuth: { ca: clientCa, names: cfg.clientCertNames } } : {}),
  policy: cfg.policy,
  metrics,
  log,
  ready: () => (shuttingDown ? "shutting down" : tls.current() ? undefined : "no certificate yet"),
});
const server = await startServer(cfg.listen, first, app, clientCa);
metrics.certExpiry.set(expiry(first.cert).getTime() / 1000);
tls.onChange((cert) => {
  server.setCertificate(cert);
  metrics.certExpiry.set(expiry(cert.cert).getTime() / 1000);
});
log.info("webhook starting", {
  port: server.port,
  certificates: cfg.certDir
    ? `files in ${cfg.certDir}`
    : `self-managed in Secret ${cfg.certSecret.namespace}/${cfg.certSecret.name}`,
  configurations: cfg.manageConfigurations
    ? [cfg.validatingConfigName, cfg.mutatingConfigName]
    : "not managed",
  failurePolicy: cfg.failurePolicy,
  callers: clientCa
    ? `only with a client certificate from ${cfg.clientCaFile}`
    : "any (no --client-ca-file: anyone who reaches the port gets reviews)",
});

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info("shutting down", { signal });
  tls.stop();
  await server.close(10_000);
  log.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("unhandledRejection", (err) => {
  log.error("unhandled rejection", { error: errorMessage(err) });
});
