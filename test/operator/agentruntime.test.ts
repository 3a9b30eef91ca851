// The AgentRuntime controller against the real control plane: one operator process
// watches this file's namespaces (Pod Security "restricted" enforced on each).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { agentPod, api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, writesAcrossResyncs, type OperatorProcess } from "../harness/operator.ts";

const RESTRICTED = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
};
const GROUP = { group: "agentry.dev", version: "v1alpha1", plural: "agentruntimes" };

type Agent = {
  metadata: { name: string; uid: string; generation: number };
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    readinessReason?: string;
    podName?: string;
    serviceName?: string;
    endpoint?: string;
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; observedGeneration?: number }[];
  };
};

const names = [
  "lifecycle",
  "replace",
  "recreate",
  "suspend",
  "cleanup",
  "orphans",
  "steady",
  "failed",
] as const;
const ns = {} as Record<(typeof names)[number], string>;
let operator: OperatorProcess;
const custom = () => api(k8s.CustomObjectsApi);
const core = () => api(k8s.CoreV1Api);

async function createAgent(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...GROUP,
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "AgentRuntime",
      metadata: { name },
      spec: { image: "registry.example/agent:1", ...spec },
    },
  });
}

async function getAgent(namespace: string, name: string): Promise<Agent> {
  return (await custom().getNamespacedCustomObject({ ...GROUP, namespace, name })) as Agent;
}

async function patchAgent(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  const res = await kubectl([
    "patch",
    "ar",
    name,
    "-n",
    namespace,
    "--type=merge",
    "-p",
    JSON.stringify({ spec }),
  ]);
  assert.equal(res.code, 0, res.stderr);
}

async function waitReady(namespace: string, name: string): Promise<Agent> {
  return waitFor(`${namespace}/${name} Ready`, async () => {
    const a = await getAgent(namespace, name);
    const ready = a.status?.conditions?.find((c) => c.type === "Ready");
    // kstatus Current: Ready, this generation, and nothing still rolling out.
    const busy = a.status?.conditions?.some((c) => c.type !== "Ready" && c.status === "True");
    return ready?.status === "True" && !busy && a.status?.observedGeneration === a.metadata.generation
      ? a
      : undefined;
  });
}

const podOf = (namespace: string, name: string) => agentPod(namespace, name).catch(() => undefined);
/** The AgentRuntime's Pod, which must exist. */
const mustPod = async (namespace: string, name: string) => (await agentPod(namespace, name))!;

describe("AgentRuntime controller", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  before(async () => {
    for (const n of names) ns[n] = await testNamespace({ ...suite, name: `ar-${n}` }, RESTRICTED);
    operator = await startOperator(suite, { namespaces: Object.values(ns), args: ["--resync-period=1s"] });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("makes a Pod and a Service and reports Ready (kubectl wait works)", async () => {
    const namespace = ns.lifecycle;
    await createAgent(namespace, "echo", { model: { provider: "echo", model: "echo-1" } });
    const res = await kubectl(["wait", "--for=condition=Ready", "ar/echo", "-n", namespace, "--timeout=60s"]);
    assert.equal(res.code, 0, res.stderr);
    const agent = await waitReady(namespace, "echo");
    assert.equal(agent.status?.phase, "Ready");
    assert.equal(agent.status?.endpoint, `http://echo.${namespace}.svc:8080`);
    assert.match(agent.status?.readinessReason ?? "", /answers at/);
    const pod = await mustPod(namespace, "echo");
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/managed-by"], "agentry");
    assert.equal(pod.metadata?.annotations?.["agentry.dev/agent-id"], agent.metadata.uid);
    assert.equal(pod.metadata?.annotations?.["agentry.dev/controller-id"], "agentry");
    assert.equal(pod.metadata?.ownerReferences?.[0]?.uid, agent.metadata.uid);
    assert.equal(pod.spec?.securityContext?.runAsNonRoot, true, "restricted: runAsNonRoot");
    const env = pod.spec?.containers[0]?.env?.map((e) => e.name) ?? [];
    assert.ok(env.includes("AGENTRY_MODEL_PROVIDER"));
    const svc = await core().readNamespacedService({ name: "echo", namespace });
    assert.equal(svc.spec?.ports?.[0]?.port, 8080);
    assert.deepEqual(svc.spec?.selector, {
      "agentry.dev/agent-runtime": "echo",
      "app.kubernetes.io/managed-by": "agentry",
    });
    const get = await kubectl(["get", "ar", "echo", "-n", namespace, "--no-headers"]);
    assert.match(get.stdout, /^echo\s+Ready\s+True\s+http:\/\/echo\./);
  });

  it("replaces the Pod when the spec changes", async () => {
    const namespace = ns.replace;
    await createAgent(namespace, "agent");
    await waitReady(namespace, "agent");
    const before = await mustPod(namespace, "agent");
    await patchAgent(namespace, "agent", { image: "registry.example/agent:2" });
    const replaced = await waitFor("new pod with image 2", async () => {
      const p = await podOf(namespace, "agent");
      return p && p.metadata?.uid !== before.metadata?.uid && p.status?.phase === "Running" ? p : undefined;
    });
    assert.equal(replaced.spec?.containers[0]?.image, "registry.example/agent:2");
    // A new template is a new Pod name: it started beside the old one, which went once it was Ready.
    assert.notEqual(replaced.metadata?.name, before.metadata?.name);
    const agent = await waitReady(namespace, "agent");
    assert.equal(agent.status?.conditions?.[0]?.observedGeneration, agent.metadata.generation);
    assert.equal(agent.status?.podName, replaced.metadata?.name);
    await waitFor("the old Pod gone", async () => {
      const old = await core()
        .readNamespacedPod({ name: before.metadata!.name!, namespace })
        .catch(() => undefined);
      return old === undefined || old.metadata?.uid !== before.metadata?.uid;
    });
    const events = await core().listNamespacedEvent({ namespace, fieldSelector: "reason=Replaced" });
    assert.match(
      events.items[0]?.message ?? "",
      new RegExp(`Replaced Pod ${before.metadata!.name} with ${replaced.metadata!.name}`),
    );
  });

  it("recreates a deleted Pod", async () => {
    const namespace = ns.recreate;
    await createAgent(namespace, "agent");
    await waitReady(namespace, "agent");
    const first = await mustPod(namespace, "agent");
    await core().deleteNamespacedPod({ name: first.metadata!.name!, namespace });
    const second = await waitFor("pod recreated", async () => {
      const p = await podOf(namespace, "agent");
      return p && p.metadata?.uid !== first.metadata?.uid ? p : undefined;
    });
    assert.equal(second.metadata?.ownerReferences?.[0]?.kind, "AgentRuntime");
    await waitReady(namespace, "agent");
  });

  it("recreates a failed Pod with backoff and reports why", async () => {
    const namespace = ns.failed;
    await createAgent(namespace, "agent");
    await waitReady(namespace, "agent");
    const first = await mustPod(namespace, "agent");
    await core().patchNamespacedPodStatus(
      {
        name: first.metadata!.name!,
        namespace,
        body: { status: { phase: "Failed", reason: "Evicted", message: "The node was low on memory." } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor("pod replaced after failure", async () => {
      const p = await podOf(namespace, "agent");
      return p && p.metadata?.uid !== first.metadata?.uid ? p : undefined;
    });
    await waitReady(namespace, "agent");
    const events = await core().listNamespacedEvent({ namespace });
    const failed = events.items.find((e) => e.reason === "PodFailed");
    assert.ok(failed, "a PodFailed event was recorded");
    assert.equal(failed.type, "Warning");
    assert.match(failed.message ?? "", /failed; recreating it in \d+s/);
  });

  it("suspends (Pod removed, Service kept) and resumes", async () => {
    const namespace = ns.suspend;
    await createAgent(namespace, "agent");
    await waitReady(namespace, "agent");
    await patchAgent(namespace, "agent", { suspended: true });
    await waitFor("pod gone", async () => (await podOf(namespace, "agent")) === undefined);
    const suspended = await waitFor("phase Suspended", async () => {
      const a = await getAgent(namespace, "agent");
      return a.status?.phase === "Suspended" ? a : undefined;
    });
    assert.equal(suspended.status?.conditions?.[0]?.status, "True");
    assert.equal(suspended.status?.conditions?.[0]?.reason, "Suspended");
    await core().readNamespacedService({ name: "agent", namespace });
    await patchAgent(namespace, "agent", { suspended: false });
    await waitReady(namespace, "agent");
    assert.ok(await podOf(namespace, "agent"));
  });

  it("removes children when the AgentRuntime is deleted", async () => {
    const namespace = ns.cleanup;
    await createAgent(namespace, "agent", { storage: { size: "1Gi" }, networkPolicy: { enabled: true } });
    await waitFor("pod, service, claim, policy", async () => {
      const [pods, svcs, pvcs, pols] = await Promise.all([
        core().listNamespacedPod({ namespace }),
        core().listNamespacedService({ namespace }),
        core().listNamespacedPersistentVolumeClaim({ namespace }),
        api(k8s.NetworkingV1Api).listNamespacedNetworkPolicy({ namespace }),
      ]);
      return (
        pods.items.length === 1 &&
        svcs.items.length === 1 &&
        pvcs.items.length === 1 &&
        pols.items.length === 1
      );
    });
    await custom().deleteNamespacedCustomObject({ ...GROUP, namespace, name: "agent" });
    await waitFor("children garbage-collected", async () => {
      const [pods, svcs, pols] = await Promise.all([
        core().listNamespacedPod({ namespace }),
        core().listNamespacedService({ namespace }),
        api(k8s.NetworkingV1Api).listNamespacedNetworkPolicy({ namespace }),
      ]);
      return pods.items.length === 0 && svcs.items.length === 0 && pols.items.length === 0;
    });
  });

  it("deletes orphaned Pods and Services agentry made, and nothing that only carries its labels", async () => {
    const namespace = ns.orphans;
    const labels = { "app.kubernetes.io/managed-by": "agentry", "agentry.dev/agent-runtime": "ghost" };
    // What an AgentRuntime deleted with propagationPolicy=Orphan leaves behind: agentry's labels
    // and annotations, no owner reference.
    const annotations = {
      "agentry.dev/agent-id": "0b1d7c2e-dead-4b1d-9c2e-000000000000",
      "agentry.dev/controller-id": "agentry",
    };
    await core().createNamespacedService({
      namespace,
      body: {
        metadata: { name: "ghost", labels, annotations },
        spec: { ports: [{ port: 80 }], selector: labels },
      },
    });
    // Someone else's Service with agentry's labels copied but not made by agentry: left alone.
    await core().createNamespacedService({
      namespace,
      body: { metadata: { name: "lookalike", labels }, spec: { ports: [{ port: 80 }], selector: labels } },
    });
    await core().createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "ghost", labels, annotations },
        spec: {
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "c",
              image: "registry.example/x:1",
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    });
    await waitFor("orphans removed", async () => {
      const [pods, svcs] = await Promise.all([
        core().listNamespacedPod({ namespace }),
        core().listNamespacedService({ namespace }),
      ]);
      return pods.items.length === 0 && svcs.items.map((s) => s.metadata?.name).join() === "lookalike";
    });
    assert.ok(operator.logs.some((l) => l.message === "deleting orphan"));
    // Still there after several resyncs (--resync-period=1s).
    await new Promise((r) => setTimeout(r, 3000));
    await core().readNamespacedService({ name: "lookalike", namespace });
  });

  it("makes zero writes when reconciling an unchanged state again", async () => {
    const namespace = ns.steady;
    for (const name of ["a", "b", "c"]) await createAgent(namespace, name);
    for (const name of ["a", "b", "c"]) await waitReady(namespace, name);
    // With --resync-period=1s every object is reconciled again each second.
    const writes = await writesAcrossResyncs(operator, "agentruntime");
    assert.equal(writes.after, writes.before, "resyncs wrote nothing");
  });
});
