// Prometheus gauges of each SandboxFleet (what `kubectl get sandboxfleets` shows, over time)
// and of each sandbox's pressure, plus how long workspaces wait to be placed. Label values are
// namespaces, fleet and pod names: bounded by the objects that exist, and removed with them.
import { Gauge, Histogram, type Registry } from "prom-client";

export interface FleetSample {
  namespace: string;
  fleet: string;
  minReplicas: number;
  maxReplicas: number;
  desiredReplicas: number;
  readyReplicas: number;
  placed: number;
  waiting: number;
  capacity: number;
  /** Per sandbox pod: its cpu and memory use as fractions of its limits (0..1), when known. */
  sandboxes: { pod: string; cpu?: number; memory?: number; draining: boolean }[];
}

export class FleetMetrics {
  private readonly replicas: Gauge<"namespace" | "fleet" | "kind">;
  private readonly workspaces: Gauge<"namespace" | "fleet" | "state">;
  private readonly capacity: Gauge<"namespace" | "fleet">;
  private readonly pressure: Gauge<"namespace" | "fleet" | "pod" | "resource">;
  private readonly draining: Gauge<"namespace" | "fleet" | "pod">;
  private readonly placement: Histogram;
  /** The sandbox pods last reported per fleet, so that gone ones lose their series. */
  private readonly pods = new Map<string, Set<string>>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.replicas = new Gauge({
      name: "agentry_fleet_replicas",
      help: "Sandboxes of a SandboxFleet by kind: min, max, desired (the operator's decision), ready.",
      labelNames: ["namespace", "fleet", "kind"],
      registers,
    });
    this.workspaces = new Gauge({
      name: "agentry_fleet_workspaces",
      help: "Workspaces of a SandboxFleet by state: placed on a sandbox, or waiting for room.",
      labelNames: ["namespace", "fleet", "state"],
      registers,
    });
    this.capacity = new Gauge({
      name: "agentry_fleet_capacity",
      help: "Workspaces the fleet's ready sandboxes can hold (readyReplicas × maxWorkspacesPerSandbox).",
      labelNames: ["namespace", "fleet"],
      registers,
    });
    this.pressure = new Gauge({
      name: "agentry_sandbox_pressure",
      help: "A sandbox's cpu or memory use as a fraction of its limit (0..1), as last sampled by the operator.",
      labelNames: ["namespace", "fleet", "pod", "resource"],
      registers,
    });
    this.draining = new Gauge({
      name: "agentry_sandbox_draining",
      help: "1 while a sandbox is draining (its workspaces are moving away before it is removed).",
      labelNames: ["namespace", "fleet", "pod"],
      registers,
    });
    this.placement = new Histogram({
      name: "agentry_workspace_placement_seconds",
      help: "From a workspace becoming not Ready (created, or its sandbox gone) to Ready on a sandbox.",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
  }

  observe(s: FleetSample): void {
    const fleet = { namespace: s.namespace, fleet: s.fleet };
    const kinds = {
      min: s.minReplicas,
      max: s.maxReplicas,
      desired: s.desiredReplicas,
      ready: s.readyReplicas,
    };
    for (const [kind, n] of Object.entries(kinds)) this.replicas.set({ ...fleet, kind }, n);
    this.workspaces.set({ ...fleet, state: "placed" }, s.placed);
    this.workspaces.set({ ...fleet, state: "waiting" }, s.waiting);
    this.capacity.set(fleet, s.capacity);
    const key = `${s.namespace}/${s.fleet}`;
    const now = new Set(s.sandboxes.map((b) => b.pod));
    for (const gone of this.pods.get(key) ?? []) if (!now.has(gone)) this.removePod(fleet, gone);
    this.pods.set(key, now);
    for (const b of s.sandboxes) {
      const pod = { ...fleet, pod: b.pod };
      for (const resource of ["cpu", "memory"] as const) {
        const v = b[resource];
        if (v === undefined) this.pressure.remove({ ...pod, resource });
        else this.pressure.set({ ...pod, resource }, v);
      }
      this.draining.set(pod, b.draining ? 1 : 0);
    }
  }

  /** A fleet that is gone: its series go too. */
  forget(namespace: string, fleet: string): void {
    const labels = { namespace, fleet };
    for (const kind of ["min", "max", "desired", "ready"]) this.replicas.remove({ ...labels, kind });
    for (const state of ["placed", "waiting"]) this.workspaces.remove({ ...labels, state });
    this.capacity.remove(labels);
    for (const pod of this.pods.get(`${namespace}/${fleet}`) ?? []) this.removePod(labels, pod);
    this.pods.delete(`${namespace}/${fleet}`);
  }

  /** A workspace became Ready after `seconds` without a sandbox. */
  placed(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.placement.observe(seconds);
  }

  private removePod(fleet: { namespace: string; fleet: string }, pod: string): void {
    for (const resource of ["cpu", "memory"]) this.pressure.remove({ ...fleet, pod, resource });
    this.draining.remove({ ...fleet, pod });
  }
}
