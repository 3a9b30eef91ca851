// The agent runtime's Prometheus metrics (prom-client), served on --metrics-addr apart from
// its API: tasks by result and how long they took, and tasks running. Node's default process
// metrics keep their standard names (process_*, nodejs_*).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const TASK_RESULTS = ["succeeded", "failed", "timed_out", "cancelled", "refused"] as const;
export type TaskOutcome = (typeof TASK_RESULTS)[number];

/** A finished task's outcome from its HTTP status. */
export function taskOutcome(status: number): TaskOutcome {
  if (status === 200) return "succeeded";
  if (status === 504) return "timed_out";
  if (status === 499) return "cancelled";
  if (status === 429) return "refused";
  return "failed";
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly tasks: Counter<"result">;
  readonly taskSeconds: Histogram;

  /** `running`: the tasks running now, read at each scrape. */
  constructor(options: { running: () => number; defaults?: boolean }) {
    if (options.defaults ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.tasks = new Counter({
      name: "agentry_agent_tasks_total",
      help: "Tasks by result (succeeded, failed, timed_out, cancelled, refused: over the concurrency cap).",
      labelNames: ["result"],
      registers,
    });
    this.taskSeconds = new Histogram({
      name: "agentry_agent_task_duration_seconds",
      help: "Time from a task's start to its answer.",
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    new Gauge({
      name: "agentry_agent_tasks_running",
      help: "Tasks running now.",
      registers,
      collect() {
        this.set(options.running());
      },
    });
    // Every labelled series exists from the start: a rate() over it needs no first event.
    for (const result of TASK_RESULTS) this.tasks.inc({ result }, 0);
  }

  /** A task ended with this HTTP status after `seconds` (none: it never ran). */
  task(status: number, seconds?: number): void {
    this.tasks.inc({ result: taskOutcome(status) });
    if (seconds !== undefined) this.taskSeconds.observe(seconds);
  }
}
