// An AgentRuntime reconciler wired to fakes for its unit tests: fake informers behind the
// operator's typed views (as operator/main.ts wires them), a recording client and recorder,
// a clock the test moves, and the steps the tests share (the kubelet's part included).
import type { AgentRuntime } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { Metrics } from "../../lib/kube/metrics.ts";
import { TypedInformer } from "../../lib/kube/typed.ts";
import { silentLogger } from "../../lib/log.ts";
import { LABEL_AGENT } from "../../operator/controllers/agentruntime/desired.ts";
import {
  AgentRuntimeReconciler,
  type AgentInformers,
} from "../../operator/controllers/agentruntime/reconciler.ts";
import { FakeClock, FakeInformer, RecordingClient, RecordingRecorder, type Call } from "./fakekube.ts";

export const NS = "team";
export const KEY = `${NS}/coder`;

export function agentObject(spec: Record<string, unknown> = {}, uid = "uid-agent"): KubeObject {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "AgentRuntime",
    metadata: { name: "coder", namespace: NS, uid, generation: 1 },
    spec: { image: "registry.example/agent:1", ...spec },
  };
}

/** Calls as `verb Kind[/subresource] name`. */
export const short = (calls: Call[]): string[] =>
  calls.map((c) => `${c.verb} ${c.kind}${c.subresource ? `/${c.subresource}` : ""} ${c.name ?? ""}`.trim());

export class AgentTestbed {
  readonly informers: { [K in keyof AgentInformers]: FakeInformer };
  readonly client: RecordingClient;
  readonly recorder = new RecordingRecorder();
  readonly clock = new FakeClock();
  readonly metrics = new Metrics(false);
  /** What the typed informer reported as not parsing. */
  readonly invalid: string[] = [];
  readonly reconciler: AgentRuntimeReconciler;

  constructor() {
    this.informers = {
      agents: new FakeInformer("AgentRuntime"),
      pods: new FakeInformer("Pod"),
      services: new FakeInformer("Service"),
      networkPolicies: new FakeInformer("NetworkPolicy"),
      claims: new FakeInformer("PersistentVolumeClaim"),
      workspaces: new FakeInformer("Workspace"),
      fleets: new FakeInformer("SandboxFleet"),
    };
    const informers = this.informers;
    // Pods are named after their template: number the hashes in the order the Pods come.
    informers.pods.on("add", (p) => void this.hashNo(p.metadata.name!.replace(/^coder-/, "")));
    this.client = new RecordingClient(Object.values(informers));
    this.reconciler = new AgentRuntimeReconciler({
      client: this.client,
      // The operator's typed view over the raw cache, as operator/main.ts wires it.
      informers: {
        ...informers,
        agents: new TypedInformer("AgentRuntime", informers.agents, (_o, problem) =>
          this.invalid.push(problem),
        ),
        workspaces: new TypedInformer("Workspace", informers.workspaces, () => undefined),
        fleets: new TypedInformer("SandboxFleet", informers.fleets, () => undefined),
      },
      recorder: this.recorder,
      metrics: this.metrics,
      log: silentLogger(),
      context: {
        controllerId: "agentry",
        gateway: { namespace: "agentry-system", podLabels: { app: "gateway" } },
      },
      now: this.clock.now,
      maxBackoffMs: 8_000,
    });
  }

  agent(): AgentRuntime {
    return this.informers.agents.get(NS, "coder") as unknown as AgentRuntime;
  }

  /** The AgentRuntime's Pod created last (Pods are named after their template: coder-<hash>). */
  pod(): KubeObject | undefined {
    return this.pods().at(-1);
  }

  /** The AgentRuntime's Pods in the cache, oldest first. */
  pods(): KubeObject[] {
    return this.informers.pods.list().filter((p) => p.metadata.labels?.[LABEL_AGENT] === "coder");
  }

  /** The kubelet's part: the Pod (the last one made) reaches `phase` (Ready when Running and ready). */
  podIs(phase: string, ready = false, p = this.pod()!): void {
    this.informers.pods.set({
      ...p,
      status: {
        phase,
        conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
        containerStatuses: [{ name: "agent", ready, restartCount: 0, state: {} }],
      },
    });
  }

  /** A new AgentRuntime (`agentObject(spec)`) whose Pod became Ready: both passes run. */
  async ready(spec: Record<string, unknown> = {}): Promise<void> {
    this.informers.agents.set(agentObject(spec));
    await this.reconciler.reconcile(KEY);
    this.podIs("Running", true);
    await this.reconciler.reconcile(KEY);
  }

  /** Someone changes the spec: the generation moves on, the status stays as last written. */
  changeSpec(spec: Record<string, unknown>): void {
    const changed = agentObject(spec);
    const current = this.agent();
    this.informers.agents.set({
      ...changed,
      metadata: { ...changed.metadata, generation: (current.metadata.generation ?? 1) + 1 },
      status: current.status,
    });
  }

  /** Someone else's object of the AgentRuntime's children's name (`name`), in the cache. */
  theirs(informer: "pods" | "services", kind: string, name = "coder"): void {
    this.informers[informer].set({
      apiVersion: "v1",
      kind,
      metadata: { name, namespace: NS, uid: "uid-theirs", labels: { app: "theirs" } },
    });
  }

  /** The writes so far, short, the Pods' template hashes as #1, #2 ... in the order the Pods came. */
  writes(): string[] {
    return short(this.client.writes()).map((w) =>
      w.replace(/ Pod coder-([0-9a-z]{10})$/, (_, h) => ` Pod coder-${this.hashNo(h)}`),
    );
  }

  /** `#n`: the n-th template hash seen in a Pod's name. */
  hashNo(hash: string): string {
    if (!this.hashes.has(hash)) this.hashes.set(hash, `#${this.hashes.size + 1}`);
    return this.hashes.get(hash)!;
  }

  private readonly hashes = new Map<string, string>();
}
