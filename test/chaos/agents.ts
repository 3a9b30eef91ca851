// AgentRuntimes in bulk for the chaos tests: create/patch/delete many at once through our
// KubeClient, and check the invariant the operator promises — every AgentRuntime has
// exactly one Pod and one Service, owned by it, of its current template, and nothing else
// carrying agentry's labels exists in the namespace.
import * as k8s from "@kubernetes/client-node";
import { KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { CHILD_SELECTOR } from "../../operator/controllers/agentruntime/reconciler.ts";
import { LABEL_AGENT } from "../../operator/controllers/agentruntime/desired.ts";
import { waitFor } from "../harness/process.ts";

export const AR = { apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime" } as const;

export interface Agent extends KubeObject {
  spec: { image: string; suspended?: boolean };
  status?: { phase?: string; observedGeneration?: number; podName?: string; serviceName?: string };
}

interface Pod extends KubeObject {
  spec: { containers: { image: string }[]; nodeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string; reason?: string }[] };
}

/** A KubeClient on `kubeconfig` (default: the run's), with limits high enough for bulk writes. */
export function bulkClient(kubeconfig?: string): KubeClient {
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return new KubeClient(kc, { qps: 2000, burst: 4000 });
}

/** Runs `fn` over `items` with at most `width` in flight. */
export async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

export const agentName = (i: number) => `agent-${String(i).padStart(4, "0")}`;

export function agent(namespace: string, name: string, image = "registry.example/agent:1"): Agent {
  return { ...AR, metadata: { name, namespace }, spec: { image } };
}

export async function createAgents(client: KubeClient, namespace: string, names: string[], image?: string) {
  await inParallel(names, 32, (name) => client.create(agent(namespace, name, image)));
}

export async function setImage(client: KubeClient, namespace: string, name: string, image: string) {
  await client.mergePatch({ ...AR, metadata: { namespace, name } }, { spec: { image } });
}

export interface Convergence {
  /** AgentRuntimes not yet Ready at their current generation. */
  notReady: string[];
  /** The same, each with what its status and its Pod say (for failure messages). */
  why: string[];
  /** AgentRuntimes whose status is not yet of their current generation (the operator's part). */
  unobserved: string[];
  /** Everything wrong with the children, one line each; empty when the invariant holds. */
  problems: string[];
}

/**
 * Compares the namespace's AgentRuntimes with the Pods and Services carrying agentry's
 * labels: exactly one of each per AgentRuntime, owned by its current uid, the Pod running
 * its current image; no child of a missing AgentRuntime; nothing being deleted.
 */
export async function convergence(client: KubeClient, namespace: string): Promise<Convergence> {
  const [agents, pods, services] = await Promise.all([
    client.list<Agent>(AR.apiVersion, AR.kind, namespace),
    client.list<Pod>("v1", "Pod", namespace, { labelSelector: CHILD_SELECTOR }),
    client.list<KubeObject>("v1", "Service", namespace, { labelSelector: CHILD_SELECTOR }),
  ]);
  const byName = new Map(agents.items.map((a) => [a.metadata.name!, a]));
  const notReady = agents.items
    .filter(
      (a) =>
        a.status?.phase !== "Ready" ||
        a.status.observedGeneration !== a.metadata.generation ||
        a.metadata.deletionTimestamp,
    )
    .map((a) => a.metadata.name!);
  const unobserved = agents.items
    .filter((a) => a.status?.observedGeneration !== a.metadata.generation)
    .map((a) => a.metadata.name!);
  const podOf = new Map(pods.items.map((p) => [p.metadata.labels?.[LABEL_AGENT] ?? "", p]));
  const why = notReady.map((name) => {
    const a = byName.get(name)!;
    const pod = podOf.get(name);
    const conditions = (pod?.status?.conditions ?? [])
      .filter((c) => c.status !== "True")
      .map((c) => `${c.type}=${c.status}${c.reason ? `/${c.reason}` : ""}`);
    const podText = pod
      ? `pod on ${pod.spec.nodeName ?? "no node"}, ${pod.status?.phase ?? "no phase"}${conditions.length ? ` ${conditions.join(" ")}` : ""}`
      : "no pod";
    return `${name} (gen ${a.metadata.generation}, status ${a.status?.phase ?? "-"}@${a.status?.observedGeneration ?? "-"}; ${podText})`;
  });
  const problems: string[] = [];
  for (const [kind, list] of [
    ["Pod", pods.items],
    ["Service", services.items],
  ] as const) {
    const seen = new Map<string, number>();
    for (const child of list as KubeObject[]) {
      const owner = child.metadata.labels?.[LABEL_AGENT] ?? "";
      const label = `${kind} ${child.metadata.name}`;
      seen.set(owner, (seen.get(owner) ?? 0) + 1);
      const a = byName.get(owner);
      if (!a) problems.push(`${label}: orphan (AgentRuntime ${owner} does not exist)`);
      else if (!child.metadata.ownerReferences?.some((r) => r.uid === a.metadata.uid && r.controller))
        problems.push(`${label}: not controlled by the current ${owner} (uid ${a.metadata.uid})`);
      if (child.metadata.deletionTimestamp) problems.push(`${label}: still being deleted`);
      if (kind === "Pod" && a) {
        const image = (child as Pod).spec.containers[0]?.image;
        if (image !== a.spec.image) problems.push(`${label}: image ${image}, spec says ${a.spec.image}`);
      }
    }
    for (const a of agents.items) {
      const n = seen.get(a.metadata.name!) ?? 0;
      if (n !== 1) problems.push(`${a.metadata.name}: ${n} ${kind}s`);
    }
  }
  return { notReady, why, unobserved, problems };
}

/** Waits until convergence() reports nothing wrong; the error lists what still was. */
export async function waitConverged(client: KubeClient, namespace: string, timeoutMs: number): Promise<void> {
  let last: Convergence = { notReady: [], why: [], unobserved: [], problems: [] };
  await waitFor(
    `every AgentRuntime in ${namespace} Ready with exactly its children`,
    async () => {
      last = await convergence(client, namespace);
      return last.notReady.length === 0 && last.problems.length === 0;
    },
    { timeoutMs, intervalMs: 500 },
  ).catch((err: Error) => {
    const show = (l: string[]) => `${l.length}: ${l.slice(0, 10).join("; ")}`;
    throw new Error(`${err.message}\n  not ready ${show(last.why)}\n  problems ${show(last.problems)}`);
  });
}
