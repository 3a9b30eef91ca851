// Prometheus metrics of the controller machinery in lib/kube (reconciles, work queue, writes,
// apiserver requests, leader), on one registry that the operator serves at /metrics. The
// reconcile and work-queue metrics carry controller-runtime's names and labels, so the
// dashboards and alerts written for Go operators read agentry's too; Node's default process
// metrics keep their standard names (process_*, nodejs_*).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileSeconds: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly queueDepth: Gauge<"name">;
  readonly queueAdds: Counter<"name">;
  readonly queueRetries: Counter<"name">;
  readonly queueWaitSeconds: Histogram<"name">;
  readonly writes: Counter<"controller" | "kind" | "verb">;
  readonly kubeRequests: Counter<"verb" | "code">;
  readonly leader: Gauge;
  readonly podAddresses: Counter<"via">;

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.reconciles = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Reconciles by controller and result (success, error, requeue).",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Reconciles that failed (and are retried with backoff), by controller.",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileSeconds = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Time spent in one reconcile.",
      labelNames: ["controller"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Workers of the controller busy with a reconcile.",
      labelNames: ["controller"],
      registers,
    });
    this.queueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Keys waiting in the controller's work queue.",
      labelNames: ["name"],
      registers,
    });
    this.queueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Keys added to the controller's work queue.",
      labelNames: ["name"],
      registers,
    });
    this.queueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Keys put back with backoff after a failed reconcile.",
      labelNames: ["name"],
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "Time a key waited in the queue before a worker took it.",
      labelNames: ["name"],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.writes = new Counter({
      name: "agentry_writes_total",
      help: "Writes the controllers made to the apiserver, by kind and verb (apply, create, delete, status).",
      labelNames: ["controller", "kind", "verb"],
      registers,
    });
    this.kubeRequests = new Counter({
      name: "agentry_kube_requests_total",
      help: "Requests to the apiserver by verb and HTTP status code.",
      labelNames: ["verb", "code"],
      registers,
    });
    this.podAddresses = new Counter({
      name: "agentry_pod_address_resolutions_total",
      help: "Changes in how a pod the operator dials resolves: via pod-ip, map (a loopback process) or none (not dialled).",
      labelNames: ["via"],
      registers,
    });
    this.leader = new Gauge({
      name: "agentry_leader",
      help: "1 while this replica holds the leader lease.",
      registers,
    });
  }
}
