// A SandboxFleet reconciler wired to fakes for its unit tests: fake informers behind the
// operator's typed views, a recording client, fake sandbox runtimes and Deployment
// controller (fakefleet.ts), a clock the test moves, and a few steps the tests share.
import type { SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { Metrics } from "../../lib/kube/metrics.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { TypedInformer } from "../../lib/kube/typed.ts";
import { silentLogger } from "../../lib/log.ts";
import {
  SandboxFleetReconciler,
  type FleetInformers,
} from "../../operator/controllers/sandboxfleet/reconciler.ts";
import { FakeDeployments, FakeSandboxes } from "./fakefleet.ts";
import { FakeClock, FakeInformer, RecordingClient, RecordingRecorder } from "./fakekube.ts";

export const NS = "team";
export const SECOND = 1000;

/** A fleet "pool" that samples every second, with windows of 2 samples and no cooldown. */
export const fleetObject = (spec: Record<string, unknown> = {}, generation = 1): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "SandboxFleet",
  metadata: { name: "pool", namespace: NS, uid: "uid-fleet", generation },
  spec: {
    template: { image: "registry.example/sandbox:1" },
    minReplicas: 1,
    maxReplicas: 5,
    warmEmpty: 1,
    samplingInterval: "1s",
    scaleUpWindow: 2,
    scaleDownWindow: 2,
    cooldown: "0s",
    idleTTL: "3s",
    ...spec,
  },
});

export const workspaceObject = (name: string, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: {
    name,
    namespace: NS,
    uid: `uid-${name}`,
    generation: 1,
    creationTimestamp: "2026-01-01T00:00:00Z",
  },
  spec: { fleetRef: { name: "pool" }, ...spec },
});

export class FleetTestbed {
  readonly informers: { [K in keyof FleetInformers]: FakeInformer } = {
    fleets: new FakeInformer("SandboxFleet"),
    workspaces: new FakeInformer("Workspace"),
    deployments: new FakeInformer("Deployment"),
    replicaSets: new FakeInformer("ReplicaSet"),
    sandboxPods: new FakeInformer("Pod"),
    fleetPolicies: new FakeInformer("NetworkPolicy"),
    agents: new FakeInformer("AgentRuntime"),
  };
  readonly client = new RecordingClient(Object.values(this.informers));
  readonly recorder = new RecordingRecorder();
  readonly clock = new FakeClock();
  readonly sandboxes = new FakeSandboxes(this.clock.now);
  readonly deployments = new FakeDeployments(this.informers);
  /** What the typed informers reported as not parsing. */
  readonly invalid: string[] = [];
  reconciler: SandboxFleetReconciler;

  constructor() {
    this.reconciler = this.newReconciler();
  }

  /** A restarted or newly elected operator: a fresh reconciler (no memory) over the same world. */
  restart(): void {
    this.reconciler = this.newReconciler();
  }

  private newReconciler(): SandboxFleetReconciler {
    const report = (o: KubeObject, problem: string) => this.invalid.push(`${o.metadata.name}: ${problem}`);
    return new SandboxFleetReconciler({
      client: this.client,
      // The operator's typed views over the raw caches, as operator/main.ts wires them.
      informers: {
        ...this.informers,
        fleets: new TypedInformer("SandboxFleet", this.informers.fleets, report),
        workspaces: new TypedInformer("Workspace", this.informers.workspaces, report),
        agents: new TypedInformer("AgentRuntime", this.informers.agents, report),
      },
      recorder: this.recorder,
      metrics: new Metrics(false),
      log: silentLogger(),
      sandboxes: this.sandboxes,
      addresses: new PodAddresses(),
      controllerId: "agentry",
      peers: { gateway: { namespace: "agentry-system", podLabels: { app: "gateway" } } },
      now: this.clock.now,
    });
  }

  pass() {
    return this.reconciler.reconcile(`${NS}/pool`);
  }

  /** Moves the clock on and runs a pass. */
  after(ms: number) {
    this.clock.advance(ms);
    return this.pass();
  }

  /** The writes so far, as "verb Kind[/subresource] name". */
  writes(): string[] {
    return this.client
      .writes()
      .map((c) => `${c.verb} ${c.kind}${c.subresource ? `/${c.subresource}` : ""} ${c.name ?? ""}`.trim());
  }

  fleet(): SandboxFleet {
    return this.informers.fleets.get(NS, "pool") as unknown as SandboxFleet;
  }

  ws(name: string): Workspace {
    return this.informers.workspaces.get(NS, name) as unknown as Workspace;
  }

  /** The Deployment's spec.replicas. */
  replicas(): number | undefined {
    const d = this.informers.deployments.get(NS, "pool-sandbox");
    return (d?.["spec"] as { replicas?: number } | undefined)?.replicas;
  }

  pods(): string[] {
    return this.informers.sandboxPods.list(NS).map((p) => p.metadata.name!);
  }

  /** A fleet whose Deployment and pods are up (one sample taken since). */
  async startFleet(spec: Record<string, unknown> = {}): Promise<void> {
    this.informers.fleets.set(fleetObject(spec));
    await this.pass();
    this.deployments.settle();
    await this.after(SECOND);
  }

  /** Places a workspace (its own owner by default) and returns its sandbox. */
  async place(name: string, spec: Record<string, unknown> = { ownerId: name }): Promise<string | undefined> {
    this.informers.workspaces.set(workspaceObject(name, spec));
    await this.pass();
    return this.ws(name).status?.sandboxPod;
  }
}
