// The sandbox runtime's Prometheus metrics (prom-client), served on --metrics-addr apart from
// its API: commands run (by outcome) and how long they took, commands running, workspaces
// held, and flushes to the object store (by result) with the bytes they covered. Node's
// default process metrics keep their standard names (process_*, nodejs_*).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** How a command ended: its own exit, the time limit, or the caller going away. */
export type ExecOutcome = "exited" | "timed_out" | "cancelled" | "failed";

export class SandboxMetrics {
  readonly registry = new Registry();
  readonly execs: Counter<"outcome">;
  readonly execSeconds: Histogram;
  readonly execsInFlight: Gauge;
  readonly workspaces: Gauge;
  readonly flushes: Counter<"result">;
  readonly flushBytes: Counter;

  /** `workspaces`: read at each scrape. */
  constructor(options: { workspaces: () => number; defaults?: boolean }) {
    if (options.defaults ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.execs = new Counter({
      name: "agentry_sandbox_execs_total",
      help: "Commands run in workspaces, by outcome (exited, timed_out, cancelled, failed).",
      labelNames: ["outcome"],
      registers,
    });
    this.execSeconds = new Histogram({
      name: "agentry_sandbox_exec_duration_seconds",
      help: "Wall-clock time of a command in a workspace.",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600],
      registers,
    });
    this.execsInFlight = new Gauge({
      name: "agentry_sandbox_execs_in_flight",
      help: "Commands running now or waiting for an exec slot.",
      registers,
    });
    this.workspaces = new Gauge({
      name: "agentry_sandbox_workspaces",
      help: "Workspaces this sandbox holds.",
      registers,
      collect() {
        this.set(options.workspaces());
      },
    });
    this.flushes = new Counter({
      name: "agentry_sandbox_flushes_total",
      help: "Flushes of a workspace to its object store, by result (success, failure).",
      labelNames: ["result"],
      registers,
    });
    this.flushBytes = new Counter({
      name: "agentry_sandbox_flush_bytes_total",
      help: "Bytes of the workspaces flushed (each flush counts its workspace's whole size).",
      registers,
    });
    // Every labelled series exists from the start: a rate() over it needs no first event.
    for (const outcome of ["exited", "timed_out", "cancelled", "failed"] as const)
      this.execs.inc({ outcome }, 0);
    for (const result of ["success", "failure"] as const) this.flushes.inc({ result }, 0);
  }

  /** A command ended. */
  exec(outcome: ExecOutcome, seconds: number | undefined): void {
    this.execs.inc({ outcome });
    if (seconds !== undefined) this.execSeconds.observe(seconds);
  }

  /** A flush ended: its bytes when it succeeded, undefined when it failed. */
  flush(bytes: number | undefined): void {
    this.flushes.inc({ result: bytes === undefined ? "failure" : "success" });
    if (bytes !== undefined) this.flushBytes.inc(bytes);
  }
}
