// agentry operator entry point: wiring only. Informers start at once (a standby replica
// keeps a warm cache); controllers run only while this replica holds the leader Lease.
import { KubeConfig } from "../lib/kube/kubeconfig.ts";
import { loadConfig, usage } from "./config.ts";
import { configOrExit } from "../lib/cli/config.ts";
import { startHealthServer } from "../lib/http/health.ts";
import { errorMessage, createLogger } from "../lib/log.ts";
import { Metrics } from "../lib/kube/metrics.ts";
import { KubeClient, type KubeObject } from "../lib/kube/client.ts";
import { controllersFor } from "../lib/kube/watches.ts";
import { EventRecorder } from "../lib/kube/events.ts";
import { countWrite } from "../lib/kube/children.ts";
import { createInformer, keyOf, type SharedInformer } from "../lib/kube/informer.ts";
import { StringPool } from "../lib/kube/intern.ts";
import { TypedInformer } from "../lib/kube/typed.ts";
import { cronJobView, jobView, metadataOnly, podView, type Projection } from "../lib/kube/projections.ts";
import { LeaderElector } from "../lib/kube/leader.ts";
import { AgentRuntimeReconciler, CHILD_SELECTOR } from "./controllers/agentruntime/reconciler.ts";
import { SANDBOX_POD_SELECTOR, SandboxFleetReconciler } from "./controllers/sandboxfleet/reconciler.ts";
import { FleetMetrics } from "./controllers/sandboxfleet/metrics.ts";
import { HttpSandboxApi } from "./controllers/sandboxfleet/sandboxapi.ts";
import { PodAddresses } from "../lib/kube/podaddresses.ts";
import { AgentProbe } from "./controllers/agentruntime/probe.ts";
import { PIPELINE_CHILD_SELECTOR, PipelineReconciler } from "./controllers/pipeline/reconciler.ts";
import { OperatorKeys } from "./controllers/keys.ts";
import { TrustReconciler } from "./controllers/trust.ts";
import { WorkspaceExpiryReconciler } from "./controllers/workspace.expiry.ts";
import { TRUST_SELECTOR } from "./controllers/trust.desired.ts";
import { FleetStores } from "./broker/stores.ts";
import { PodTokenReviewer, startBrokerServer, StoreBroker } from "./broker/server.ts";
import { deploymentName } from "./controllers/sandboxfleet/desired.ts";
import { workspaceNameIn } from "./broker/policy.ts";

const cfg = configOrExit("operator", loadConfig, usage);
const log = createLogger(cfg.logLevel, "operator");
const metrics = new Metrics();

const kc = KubeConfig.fromDefault();
const client = new KubeClient(kc, {
  qps: cfg.kubeQps,
  burst: cfg.kubeBurst,
  userAgent: "agentry-operator",
  onRequest: (verb, _path, code) => metrics.kubeRequests.inc({ verb, code: String(code) }),
});

// One pool of repeated strings (namespaces, label values, hashes, timestamps) for every cache.
const strings = new StringPool();
const informer = <T extends KubeObject = KubeObject>(
  apiVersion: string,
  kind: string,
  labelSelector?: string,
  transform?: Projection<T>,
  metadataOnly = false,
): SharedInformer<T> =>
  createInformer<T>(
    client,
    {
      apiVersion,
      kind,
      strings,
      metadataOnly,
      ...(labelSelector ? { labelSelector } : {}),
      ...(transform ? { transform } : {}),
    },
    cfg.namespaces,
    log,
  );
// Our kinds reach the controllers parsed and frozen; one that does not parse is reported.
const reportInvalid = (obj: KubeObject, problem: string) => {
  log.warn("an object's spec does not parse; it is left alone until fixed", {
    kind: obj.kind,
    object: keyOf(obj),
    problem,
  });
  recorder.event(obj, "Warning", "InvalidSpec", `spec does not parse, left alone until fixed: ${problem}`);
};
const informers = {
  agents: new TypedInformer("AgentRuntime", informer("agentry.dev/v1alpha1", "AgentRuntime"), reportInvalid),
  workspaces: new TypedInformer("Workspace", informer("agentry.dev/v1alpha1", "Workspace"), reportInvalid),
  // The children of AgentRuntimes and Pipelines are cached as what their controllers read.
  pods: informer("v1", "Pod", CHILD_SELECTOR, podView),
  // Every Service, NetworkPolicy and claim of the namespaces, as metadata (the apiserver sends
  // no more): a name the cache lacks is free, so a new AgentRuntime's children are written
  // without reading each name first (lib/kube/children.ts, current()).
  services: informer("v1", "Service", undefined, metadataOnly, true),
  networkPolicies: informer("networking.k8s.io/v1", "NetworkPolicy", undefined, metadataOnly, true),
  claims: informer("v1", "PersistentVolumeClaim", undefined, metadataOnly, true),
  fleets: new TypedInformer("SandboxFleet", informer("agentry.dev/v1alpha1", "SandboxFleet"), reportInvalid),
  deployments: informer("apps/v1", "Deployment", SANDBOX_POD_SELECTOR),
  replicaSets: informer("apps/v1", "ReplicaSet", SANDBOX_POD_SELECTOR),
  fleetPolicies: informer("networking.k8s.io/v1", "NetworkPolicy", SANDBOX_POD_SELECTOR),
  sandboxPods: informer("v1", "Pod", SANDBOX_POD_SELECTOR),
  pipelines: new TypedInformer("Pipeline", informer("agentry.dev/v1alpha1", "Pipeline"), reportInvalid),
  cronJobs: informer("batch/v1", "CronJob", PIPELINE_CHILD_SELECTOR, cronJobView),
  jobs: informer("batch/v1", "Job", PIPELINE_CHILD_SELECTOR, jobView),
  configMaps: informer("v1", "ConfigMap", PIPELINE_CHILD_SELECTOR, metadataOnly),
  trustConfigMaps: informer("v1", "ConfigMap", TRUST_SELECTOR),
};
const all = Object.values(informers);

// One resolver for every pod the operator dials (sandboxes, agents' /readyz).
const podAddresses = new PodAddresses(cfg.podAddressMap, (r) => {
  metrics.podAddresses.inc({ via: r.via });
  log.debug("pod address", r);
});

// The signing key ring (managed by the leader only) and the tokens of the operator's calls.
const keys = new OperatorKeys(client, {
  secret: { namespace: cfg.leaseNamespace, name: cfg.signingKeySecret },
  policy: { rotateEveryMs: cfg.signingKeyRotationMs, graceMs: cfg.signingKeyGraceMs },
  gateway: { namespace: cfg.gatewayNamespace, configMap: cfg.gatewayPublicKeys },
  log,
  metrics,
});

// Events are writes too: counted under the controller "events" (kind Event).
const recorder = new EventRecorder(client, "agentry-operator", log, {
  onWrite: (verb) => countWrite(metrics, "events", "Event", verb),
});
// Where the gateway and the operator run: the peers the managed NetworkPolicies let in.
const peers = {
  gateway: { namespace: cfg.gatewayNamespace, podLabels: { "app.kubernetes.io/name": "agentry-gateway" } },
  operator: { namespace: cfg.leaseNamespace, podLabels: { "app.kubernetes.io/name": "agentry-operator" } },
};
const agents = new AgentRuntimeReconciler({
  client,
  informers,
  recorder,
  metrics,
  log,
  context: { controllerId: cfg.controllerId, ...peers },
  probe: new AgentProbe(podAddresses, keys),
  stallAfterMs: cfg.stallAfterMs,
});
// The fleets' object stores, and the broker that hands sandboxes pre-signed URLs for them.
const stores = new FleetStores(client, cfg.defaultStore);
const broker = new StoreBroker({
  review: new PodTokenReviewer(client).review,
  inputs: (caller, workspaceId) => {
    const pod = informers.sandboxPods.get(caller.namespace, caller.pod);
    const fleetName = pod?.metadata.labels?.["agentry.dev/sandbox-fleet"];
    const fleet = fleetName ? informers.fleets.get(caller.namespace, fleetName) : undefined;
    const wsName = workspaceNameIn(caller.namespace, workspaceId);
    return {
      pod,
      fleet,
      deployment: fleet ? informers.deployments.get(caller.namespace, deploymentName(fleet)) : undefined,
      replicaSets: informers.replicaSets.list(caller.namespace),
      workspace: wsName ? informers.workspaces.get(caller.namespace, wsName) : undefined,
    };
  },
  stores,
  log,
});
const brokerServer = await startBrokerServer(cfg.brokerAddr, broker);
const fleets = new SandboxFleetReconciler({
  stores,
  brokerUrl: cfg.brokerUrl,
  client,
  informers,
  recorder,
  metrics,
  log,
  sandboxes: new HttpSandboxApi({ tokens: keys }),
  addresses: podAddresses,
  controllerId: cfg.controllerId,
  peers,
  stallAfterMs: cfg.stallAfterMs,
  fleetMetrics: new FleetMetrics(metrics.registry),
});
const pipelines = new PipelineReconciler({
  client,
  informers,
  recorder,
  metrics,
  log,
  dispatcherImage: cfg.dispatcherImage,
  stallAfterMs: cfg.stallAfterMs,
});
const trust = new TrustReconciler({ client, informers, keys, recorder, metrics, log });
const expiry = new WorkspaceExpiryReconciler({ client, informers, recorder, metrics, log });
const reconcilers = [agents, fleets, pipelines, trust, expiry];
// One Controller per reconciler, its watches registered; resyncs queue every key behind all
// other work (Lane.Resync).
const { controllers, controllerOf, resyncAll } = controllersFor(reconcilers, {
  workers: cfg.workers,
  metrics,
  log,
});

const health = await startHealthServer(cfg.healthAddr, metrics, {
  healthy: () => undefined,
  ready: () => (all.every((i) => i.hasSynced) ? undefined : "caches not synced yet"),
});
log.info("operator starting", {
  healthPort: health.port,
  brokerPort: brokerServer.port,
  defaultStore: cfg.defaultStore ? `${cfg.defaultStore.bucket} at ${cfg.defaultStore.endpoint}` : "none",
  namespaces: cfg.namespaces ?? "all",
  leaderElect: cfg.leaderElect,
  podAddresses: podAddresses.mapped ? "map" : "pod-ip",
});
for (const inf of all) void inf.start();

let resyncTimer: NodeJS.Timeout | undefined;
let keysTimer: NodeJS.Timeout | undefined;
/** Syncs the key ring (rotating it when due) and republishes the trust bundle when it changed. */
async function syncKeys(): Promise<void> {
  if (await keys.sync()) trust.watches.resync(controllerOf(trust));
  const next = Math.min(30_000, Math.max(1000, keys.untilNextChange()));
  keysTimer = setTimeout(() => void syncKeys(), next);
  keysTimer.unref();
}
async function startControllers(): Promise<void> {
  await Promise.all(all.map((i) => i.waitForSync()));
  metrics.leader.set(1);
  await syncKeys();
  for (const c of controllers) c.start();
  resyncAll();
  resyncTimer = setInterval(resyncAll, cfg.resyncPeriodMs);
  resyncTimer.unref();
}

const elector = cfg.leaderElect
  ? new LeaderElector(
      client,
      {
        namespace: cfg.leaseNamespace,
        name: cfg.leaseName,
        leaseDurationMs: cfg.leaseDurationMs,
        renewDeadlineMs: cfg.renewDeadlineMs,
        retryPeriodMs: cfg.retryPeriodMs,
      },
      log,
    )
  : undefined;

if (elector) {
  elector.run(
    () => void startControllers(),
    () => {
      // Another replica may already be acting: stop at once; the Deployment restarts us as a standby.
      metrics.leader.set(0);
      log.error("leadership lost; exiting");
      process.exit(1);
    },
  );
} else {
  void startControllers();
}

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info("shutting down", { signal });
  if (resyncTimer) clearInterval(resyncTimer);
  if (keysTimer) clearTimeout(keysTimer);
  await Promise.all(controllers.map((c) => c.stop(25_000)));
  await elector?.release();
  await Promise.all(all.map((i) => i.stop()));
  health.server.close();
  brokerServer.server.close();
  stores.close();
  log.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("unhandledRejection", (err) => {
  log.error("unhandled rejection", { error: errorMessage(err) });
});
