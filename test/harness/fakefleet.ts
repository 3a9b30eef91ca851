// Fakes for the SandboxFleet reconciler's unit tests, beside fakekube.ts: the sandbox
// runtimes of a fleet (the SandboxApi the operator calls, with their workspaces and load in
// memory), and the part of kube-controller-manager a fleet relies on: a Deployment's
// ReplicaSet and its pods (ready, with an address), shrunk by pod-deletion-cost.
import type { Released } from "../../contracts/sandbox.client.ts";
import type { SandboxStatus, WorkspaceInfo } from "../../contracts/sandbox.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import type { SandboxApi, SandboxTarget } from "../../operator/controllers/sandboxfleet/sandboxapi.ts";
import type { FakeInformer } from "./fakekube.ts";

interface Sandbox {
  load: { cpu: number; memory: number };
  draining: boolean;
  workspaces: Map<string, WorkspaceInfo>;
  /** Workspaces callers asked for that it does not hold. */
  asks: Set<string>;
}

/** The sandbox runtimes behind a fleet's pods, by pod name; every call is recorded. */
export class FakeSandboxes implements SandboxApi {
  readonly calls: string[] = [];
  private readonly pods = new Map<string, Sandbox>();
  private readonly now: () => Date;

  constructor(now: () => Date) {
    this.now = now;
  }

  private pod(target: SandboxTarget): Sandbox {
    let s = this.pods.get(target.pod);
    if (!s)
      this.pods.set(
        target.pod,
        (s = { load: { cpu: 0.1, memory: 0.1 }, draining: false, workspaces: new Map(), asks: new Set() }),
      );
    return s;
  }

  private record(call: string, target: SandboxTarget, id?: string): Sandbox {
    this.calls.push(`${call} ${target.pod}${id ? ` ${id}` : ""}`);
    return this.pod(target);
  }

  setLoad(pod: string, load: { cpu: number; memory: number }): void {
    this.pod({ namespace: "", pod, address: "" }).load = load;
  }

  /** A caller asks the sandbox for a workspace it does not hold (listed until it arrives). */
  ask(pod: string, id: string): void {
    this.pod({ namespace: "", pod, address: "" }).asks.add(id);
  }

  /** Ids of the workspaces on a sandbox. */
  on(pod: string): string[] {
    return [...(this.pods.get(pod)?.workspaces.keys() ?? [])];
  }

  /** Calls of one kind (e.g. "put"), for assertions. */
  made(call: string): string[] {
    return this.calls.filter((c) => c.startsWith(`${call} `));
  }

  status(target: SandboxTarget): Promise<SandboxStatus> {
    const s = this.record("status", target);
    return Promise.resolve({
      ...s.load,
      workspaces: s.workspaces.size,
      draining: s.draining,
      maxWorkspaces: 32,
      ...(s.asks.size ? { wakeRequests: [...s.asks] } : {}),
    });
  }

  putWorkspace(target: SandboxTarget, id: string, ownerId?: string): Promise<WorkspaceInfo> {
    const s = this.record("put", target, id);
    const at = this.now().toISOString();
    const info = s.workspaces.get(id) ?? {
      id,
      ownerId: ownerId ?? null,
      createdAt: at,
      lastActivityTime: at,
    };
    s.workspaces.set(id, info);
    s.asks.delete(id);
    return Promise.resolve(info);
  }

  listWorkspaces(target: SandboxTarget): Promise<WorkspaceInfo[]> {
    return Promise.resolve([...this.record("list", target).workspaces.values()]);
  }

  deleteWorkspace(target: SandboxTarget, id: string): Promise<void> {
    this.record("delete", target, id).workspaces.delete(id);
    return Promise.resolve();
  }

  releaseWorkspace(target: SandboxTarget, id: string): Promise<Released> {
    const s = this.record("release", target, id);
    const info = s.workspaces.get(id);
    s.workspaces.delete(id);
    return Promise.resolve(info ? { state: "gone", info } : { state: "gone" });
  }

  drain(target: SandboxTarget): Promise<void> {
    this.record("drain", target).draining = true;
    return Promise.resolve();
  }

  undrain(target: SandboxTarget): Promise<void> {
    this.record("undrain", target).draining = false;
    return Promise.resolve();
  }
}

const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

/**
 * What the Deployment and ReplicaSet controllers do for a fleet's Deployment, one step at a
 * time when the test says so: a ReplicaSet it controls, as many ready pods as the Deployment
 * asks for (shrinking removes the pods of lowest deletion cost first), and the Deployment's
 * status.
 */
export class FakeDeployments {
  private readonly deployments: FakeInformer;
  private readonly replicaSets: FakeInformer;
  private readonly pods: FakeInformer;
  private seq = 0;

  constructor(informers: {
    deployments: FakeInformer;
    replicaSets: FakeInformer;
    sandboxPods: FakeInformer;
  }) {
    this.deployments = informers.deployments;
    this.replicaSets = informers.replicaSets;
    this.pods = informers.sandboxPods;
  }

  /** Brings every Deployment's pods and status to its spec.replicas. */
  settle(): void {
    for (const d of this.deployments.list()) this.settleOne(d);
  }

  private settleOne(d: KubeObject): void {
    const namespace = d.metadata.namespace!;
    const spec = d["spec"] as {
      replicas?: number;
      template: { metadata: { labels: Record<string, string> } };
    };
    const rsName = `${d.metadata.name}-rs`;
    const rs =
      this.replicaSets.get(namespace, rsName) ??
      this.replicaSets.set({
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        metadata: {
          name: rsName,
          namespace,
          uid: `uid-${rsName}`,
          labels: spec.template.metadata.labels,
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "Deployment",
              name: d.metadata.name!,
              uid: d.metadata.uid!,
              controller: true,
            },
          ],
        },
      });
    const want = spec.replicas ?? 1;
    const mine = this.pods
      .list(namespace)
      .filter((p) => p.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid);
    const cost = (p: KubeObject) => Number(p.metadata.annotations?.[DELETION_COST] ?? 0);
    for (const p of [...mine].sort((a, b) => cost(a) - cost(b)).slice(0, Math.max(0, mine.length - want)))
      this.pods.remove(namespace, p.metadata.name!);
    for (let i = mine.length; i < want; i++) {
      const name = `${d.metadata.name}-${++this.seq}`;
      this.pods.set({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name,
          namespace,
          uid: `uid-${name}`,
          labels: spec.template.metadata.labels,
          ownerReferences: [
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: rsName,
              uid: rs.metadata.uid!,
              controller: true,
            },
          ],
        },
        status: { podIP: `10.0.0.${this.seq}`, conditions: [{ type: "Ready", status: "True" }] },
      });
    }
    this.deployments.set({ ...d, status: { replicas: want, readyReplicas: want } });
  }
}
