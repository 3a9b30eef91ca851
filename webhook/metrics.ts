// Prometheus metrics of the webhook (prom-client), served at /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class WebhookMetrics {
  readonly registry = new Registry();
  readonly reviews: Counter<"endpoint" | "kind" | "operation" | "result">;
  readonly reviewSeconds: Histogram<"endpoint">;
  readonly certExpiry: Gauge;
  readonly rotations: Counter;
  readonly refusedCallers: Counter;

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.reviews = new Counter({
      name: "agentry_admission_reviews_total",
      help: "Admission reviews by endpoint (validate, mutate), kind, operation and result (allowed, denied, error).",
      labelNames: ["endpoint", "kind", "operation", "result"],
      registers,
    });
    this.reviewSeconds = new Histogram({
      name: "agentry_admission_review_duration_seconds",
      help: "Time to answer one admission review.",
      labelNames: ["endpoint"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.certExpiry = new Gauge({
      name: "agentry_webhook_certificate_expiry_timestamp_seconds",
      help: "When the served certificate expires (Unix time).",
      registers,
    });
    this.refusedCallers = new Counter({
      name: "agentry_webhook_refused_callers_total",
      help: "Admission reviews refused because the caller had no client certificate from the configured CA.",
      registers,
    });
    this.rotations = new Counter({
      name: "agentry_webhook_certificate_rotations_total",
      help: "Self-managed certificates this replica created.",
      registers,
    });
  }
}
