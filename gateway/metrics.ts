// Prometheus metrics of the gateway (prom-client): requests and latency per route and status.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "route" | "status">;
  readonly duration: Histogram<"method" | "route" | "status">;
  readonly sseClients: Gauge<"kind">;
  readonly sseEvents: Counter<"kind">;
  readonly rateLimited: Counter;
  readonly addressLimited: Counter<"limit">;
  readonly tokenReviews: Counter<"result">;
  readonly sseClosed: Counter<"reason">;
  readonly reads: Counter<"kind" | "verb" | "source" | "reason">;
  readonly accessLookups: Counter<"result">;
  /** What the read cache holds, per kind; set once the cache exists (see main.ts). */
  cacheSizes: () => { kind: string; objects: number; bytes: number }[] = () => [];
  /** Audit outcomes queued and not written yet. */
  auditOutcomesPending: () => number = () => 0;

  /**
   * Labelled children of the counters and histogram, per label set: prom-client hashes the
   * label set on every inc/observe, these are found by one string key. Bounded like the
   * labels themselves (methods × routes × statuses, kinds × verbs × reasons).
   */
  private readonly children = new Map<string, unknown>();

  private child<T>(key: string, make: () => T): T {
    let c = this.children.get(key) as T | undefined;
    if (c === undefined) {
      c = make();
      if (this.children.size < 10_000) this.children.set(key, c);
    }
    return c;
  }

  /** Counts a list or get by where its answer came from (agentry_gateway_reads_total). */
  countRead(kind: string, verb: string, source: "cache" | "apiserver", reason: string): void {
    this.child(`read ${kind} ${verb} ${source} ${reason}`, () =>
      this.reads.labels({ kind, verb, source, reason }),
    ).inc();
  }

  /** Counts an authorisation question: answered from memory or by a SubjectAccessReview. */
  countAccessLookup(result: "hit" | "miss"): void {
    this.child(`access ${result}`, () => this.accessLookups.labels({ result })).inc();
  }

  /** Counts one answered request and its latency (the hot path of every request). */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const m = this.child(`request ${method} ${status} ${route}`, () => {
      const labels = { method, route, status: String(status) };
      return { count: this.requests.labels(labels), latency: this.duration.labels(labels) };
    });
    m.count.inc();
    m.latency.observe(seconds);
  }

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.requests = new Counter({
      name: "agentry_gateway_requests_total",
      help: "HTTP requests by method, route template and status code.",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "agentry_gateway_request_duration_seconds",
      help: "HTTP request latency by method, route template and status code.",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.sseClients = new Gauge({
      name: "agentry_gateway_sse_clients",
      help: "Connected event-stream clients by kind.",
      labelNames: ["kind"],
      registers,
    });
    this.sseEvents = new Counter({
      name: "agentry_gateway_sse_events_total",
      help: "Events delivered to event-stream clients by kind.",
      labelNames: ["kind"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "agentry_gateway_rate_limited_total",
      help: "Requests refused with 429 by the per-identity rate limit.",
      registers,
    });
    this.addressLimited = new Counter({
      name: "agentry_gateway_address_limited_total",
      help: "Requests refused with 429 by a per-address limit before authentication: limit=requests (every request) or limit=token_reviews (bearer tokens not seen lately).",
      labelNames: ["limit"],
      registers,
    });
    this.tokenReviews = new Counter({
      name: "agentry_gateway_token_reviews_total",
      help: "TokenReviews sent to the apiserver, by result (authenticated, rejected, error).",
      labelNames: ["result"],
      registers,
    });
    this.sseClosed = new Counter({
      name: "agentry_gateway_sse_closed_total",
      help: "Event streams the gateway closed itself, by reason (revoked: the caller lost its token or its permission).",
      labelNames: ["reason"],
      registers,
    });
    this.reads = new Counter({
      name: "agentry_gateway_reads_total",
      help: "Lists and gets of the agentry kinds by where the answer came from: source=cache, or source=apiserver (as the caller) with the reason the cache did not answer (off, denied, unsynced, behind, changed, token, selector, absent).",
      labelNames: ["kind", "verb", "source", "reason"],
      registers,
    });
    this.accessLookups = new Counter({
      name: "agentry_gateway_access_reviews_total",
      help: "Authorisation questions by result: hit (answered from the SubjectAccessReview cache) or miss (a SubjectAccessReview was sent).",
      labelNames: ["result"],
      registers,
    });
    const sizes = () => this.cacheSizes();
    const held = [
      ["agentry_gateway_cache_objects", "Objects held in the gateway's read cache, by kind.", "objects"],
      [
        "agentry_gateway_cache_json_bytes",
        "Bytes of serialised JSON held in the gateway's read cache, by kind.",
        "bytes",
      ],
    ] as const;
    for (const [name, help, field] of held)
      new Gauge({
        name,
        help,
        labelNames: ["kind"],
        registers,
        collect() {
          for (const s of sizes()) this.set({ kind: s.kind }, s[field]);
        },
      });
    const pending = () => this.auditOutcomesPending();
    new Gauge({
      name: "agentry_gateway_audit_outcomes_pending",
      help: "Audit outcomes waiting to be written (off the response path).",
      registers,
      collect() {
        this.set(pending());
      },
    });
  }
}
