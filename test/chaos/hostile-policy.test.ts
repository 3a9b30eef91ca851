// Issue 17, items 3 and 5, against the real control plane and operator: agentry never takes
// over an object it did not create (an AgentRuntime, a Pipeline or a SandboxFleet named like
// someone else's Service, Pod, ConfigMap, CronJob or Deployment leaves it untouched, reports
// NameConflict, and deleting it leaves the object alone), and a SandboxFleet's NetworkPolicy
// lets exactly the operator, the gateway and the agents whose workspace is on the fleet reach
// its sandboxes (judged by test/harness/netpol.ts on the policies and pods the cluster holds:
// there is no enforcing CNI here).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { connectionAllowed, type Policy } from "../harness/netpol.ts";
import { startOperator } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";

const AGENTRY = "agentry.dev/v1alpha1";
const SYSTEM = "agentry-system"; // where the operator and the gateway "run" (--lease-namespace)

type Condition = { type: string; status: string; reason: string; message: string };
type Resource = { metadata: { name: string; uid: string }; status?: { conditions?: Condition[] } };

async function apply(manifest: unknown): Promise<void> {
  const r = await kubectl(
    ["apply", "--server-side", "--field-manager=someone-else", "-f", "-"],
    JSON.stringify(manifest),
  );
  assert.equal(r.code, 0, r.stderr);
}

async function getJson<T>(args: string[]): Promise<T | undefined> {
  const r = await kubectl(["get", ...args, "-o", "json"]);
  if (r.code !== 0) {
    if (/NotFound/.test(r.stderr)) return undefined;
    throw new Error(r.stderr);
  }
  return JSON.parse(r.stdout) as T;
}

type Obj = {
  metadata: { resourceVersion: string; uid: string; ownerReferences?: unknown[]; labels?: object };
};

const readyOf = (r: Resource | undefined) => r?.status?.conditions?.find((c) => c.type === "Ready");

/** Waits for Ready=False NameConflict naming `kind name`, and its Warning Event. */
async function expectConflict(
  namespace: string,
  resource: string,
  name: string,
  kind: string,
  object: string,
) {
  const cr = await waitFor(`${resource}/${name} NameConflict`, async () => {
    const r = await getJson<Resource>([resource, name, "-n", namespace]);
    const ready = readyOf(r);
    return ready?.reason === "NameConflict" ? r : undefined;
  });
  const ready = readyOf(cr)!;
  assert.equal(ready.status, "False");
  assert.match(ready.message, new RegExp(`^${kind} ${object} already exists and is not managed by`));
  const events = await waitFor(`NameConflict Event of ${name}`, async () => {
    const list = await api(k8s.CoreV1Api).listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.name=${name},reason=NameConflict`,
    });
    return list.items.length ? list.items : undefined;
  });
  assert.equal(events[0]!.type, "Warning");
  assert.match(events[0]!.message ?? "", new RegExp(`${kind} ${object}`));
  return cr;
}

async function deleteAndWait(namespace: string, resource: string, name: string): Promise<void> {
  const r = await kubectl(["delete", resource, name, "-n", namespace, "--wait=true", "--timeout=60s"]);
  assert.equal(r.code, 0, r.stderr);
}

/** The object is as it was: same uid and resourceVersion, no owner reference added. */
async function unchanged(namespace: string, resource: string, name: string, before: Obj): Promise<void> {
  const now = await getJson<Obj>([resource, name, "-n", namespace]);
  assert.ok(now, `${resource}/${name} still exists`);
  assert.equal(now.metadata.uid, before.metadata.uid, `${resource}/${name} is the same object`);
  assert.equal(
    now.metadata.resourceVersion,
    before.metadata.resourceVersion,
    `${resource}/${name} untouched`,
  );
  assert.equal(now.metadata.ownerReferences, undefined, `${resource}/${name} has no owner`);
}

/** Lets garbage collection and a few reconciles pass, then checks the object is still as it was. */
async function survivesDeletion(
  namespace: string,
  resource: string,
  name: string,
  before: Obj,
): Promise<void> {
  await new Promise((r) => setTimeout(r, 4000));
  await unchanged(namespace, resource, name, before);
}

const service = (namespace: string, name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace, labels },
  spec: { selector: { app: "db" }, ports: [{ port: 5432 }] },
});

describe("hostile tenant: no adoption, NetworkPolicies by default", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  const ns: Record<"agents" | "pipelines" | "fleets" | "policy", string> = {} as never;
  let sandboxes: PodBackends;

  before(async () => {
    for (const n of ["agents", "pipelines", "fleets", "policy"] as const)
      ns[n] = await testNamespace({ ...suite, name: `hostile-${n}` });
    sandboxes = await PodBackends.start({ namespaces: [ns.policy], kinds: ["sandbox"] });
    await startOperator(suite, {
      namespaces: Object.values(ns),
      leaseNamespace: SYSTEM,
      leaderElect: false,
      podAddressMap: sandboxes.mapFile,
      args: ["--resync-period=2s"],
    });
  });
  after(async () => {
    await sandboxes?.stop();
    for (const fn of cleanups.reverse()) await fn();
  });

  it("an AgentRuntime named like someone else's Service or Pod leaves it alone", async () => {
    const namespace = ns.agents;
    await apply(service(namespace, "postgres"));
    // A lookalike carrying agentry's labels (so it is in the operator's cache), made by someone else.
    await apply(
      service(namespace, "lookalike", {
        "app.kubernetes.io/managed-by": "agentry",
        "agentry.dev/agent-runtime": "lookalike",
      }),
    );
    await apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "worker", namespace },
      spec: { containers: [{ name: "c", image: "registry.example/worker:1" }] },
    });
    // kwok writes the Pod's status as it "starts" it: record it once that is done.
    await waitFor("the foreign Pod to run", async () => {
      const p = await getJson<{ status?: { conditions?: { type: string; status: string }[] } }>([
        "pod",
        "worker",
        "-n",
        namespace,
      ]);
      return p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    });
    await new Promise((r) => setTimeout(r, 1000));
    const before = {
      postgres: (await getJson<Obj>(["service", "postgres", "-n", namespace]))!,
      lookalike: (await getJson<Obj>(["service", "lookalike", "-n", namespace]))!,
      worker: (await getJson<Obj>(["pod", "worker", "-n", namespace]))!,
    };
    for (const name of ["postgres", "lookalike", "worker"])
      await apply({
        apiVersion: AGENTRY,
        kind: "AgentRuntime",
        metadata: { name, namespace },
        spec: { image: "registry.example/agent:1" },
      });

    await expectConflict(namespace, "agentruntime", "postgres", "Service", "postgres");
    await expectConflict(namespace, "agentruntime", "lookalike", "Service", "lookalike");
    // worker: its Service and NetworkPolicy are free names and made, and its Pod is named
    // after its template (worker-<hash>), so the foreign Pod "worker" is in nobody's way.
    const worker = await waitFor("agentruntime/worker Ready beside the foreign Pod worker", async () => {
      const r = await getJson<Resource & { status?: { podName?: string } }>([
        "agentruntime",
        "worker",
        "-n",
        namespace,
      ]);
      return readyOf(r)?.status === "True" ? r : undefined;
    });
    assert.match(worker.status?.podName ?? "", /^worker-[0-9a-z]{10}$/);
    const ownService = await getJson<Obj>(["service", "worker", "-n", namespace]);
    assert.ok(ownService?.metadata.ownerReferences?.length, "the free names are used");
    assert.equal(await getJson(["pod", "postgres", "-n", namespace]), undefined, "no Pod behind a conflict");
    for (const [name, obj] of Object.entries(before))
      await unchanged(namespace, name === "worker" ? "pod" : "service", name, obj);

    for (const name of ["postgres", "lookalike", "worker"])
      await deleteAndWait(namespace, "agentruntime", name);
    await survivesDeletion(namespace, "service", "postgres", before.postgres);
    await survivesDeletion(namespace, "service", "lookalike", before.lookalike);
    await survivesDeletion(namespace, "pod", "worker", before.worker);
  });

  it("a Pipeline named like someone else's ConfigMap or CronJob leaves it alone and starts no run", async () => {
    const namespace = ns.pipelines;
    await apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "nightly-manifest", namespace },
      data: { "settings.yaml": "mine: true\n" },
    });
    await apply({
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "weekly", namespace },
      spec: {
        schedule: "0 3 * * 0",
        jobTemplate: {
          spec: {
            template: {
              spec: {
                restartPolicy: "Never",
                containers: [{ name: "c", image: "registry.example/backup:1" }],
              },
            },
          },
        },
      },
    });
    const configMap = (await getJson<Obj>(["configmap", "nightly-manifest", "-n", namespace]))!;
    const cronJob = (await getJson<Obj>(["cronjob", "weekly", "-n", namespace]))!;
    for (const name of ["nightly", "weekly"])
      await apply({
        apiVersion: AGENTRY,
        kind: "Pipeline",
        metadata: { name, namespace, annotations: { "agentry.dev/run-now": "now-1" } },
        spec: { schedule: "*/5 * * * *", steps: [{ name: "a", image: "registry.example/step:1" }] },
      });

    await expectConflict(namespace, "pipeline", "nightly", "ConfigMap", "nightly-manifest");
    await expectConflict(namespace, "pipeline", "weekly", "CronJob", "weekly");
    assert.equal(
      await getJson(["cronjob", "nightly", "-n", namespace]),
      undefined,
      "nothing after the conflict",
    );
    const jobs = await getJson<{ items: unknown[] }>(["jobs", "-n", namespace]);
    assert.equal(jobs?.items.length, 0, "no run started");
    await unchanged(namespace, "configmap", "nightly-manifest", configMap);
    await unchanged(namespace, "cronjob", "weekly", cronJob);

    for (const name of ["nightly", "weekly"]) await deleteAndWait(namespace, "pipeline", name);
    await survivesDeletion(namespace, "configmap", "nightly-manifest", configMap);
    await survivesDeletion(namespace, "cronjob", "weekly", cronJob);
  });

  it("a SandboxFleet named like someone else's Deployment leaves it alone and runs no sandbox", async () => {
    const namespace = ns.fleets;
    const labels = { app: "pool" };
    await apply({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "pool-sandbox", namespace },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: "c", image: "registry.example/pool:1" }] },
        },
      },
    });
    // The Deployment controller writes its status: wait until it settles before recording it.
    await waitFor("the foreign Deployment to settle", async () => {
      const d = await getJson<{ status?: { observedGeneration?: number; availableReplicas?: number } }>([
        "deployment",
        "pool-sandbox",
        "-n",
        namespace,
      ]);
      return d?.status?.observedGeneration === 1 && d.status.availableReplicas === 1;
    });
    await new Promise((r) => setTimeout(r, 2000));
    const deployment = (await getJson<Obj>(["deployment", "pool-sandbox", "-n", namespace]))!;
    await apply({
      apiVersion: AGENTRY,
      kind: "SandboxFleet",
      metadata: { name: "pool", namespace },
      spec: { template: { image: "registry.example/sandbox:1" }, minReplicas: 2, maxReplicas: 3 },
    });
    await expectConflict(namespace, "sandboxfleet", "pool", "Deployment", "pool-sandbox");
    await unchanged(namespace, "deployment", "pool-sandbox", deployment);
    const sandboxPods = await getJson<{ items: unknown[] }>([
      "pods",
      "-n",
      namespace,
      "-l",
      "agentry.dev/sandbox-fleet=pool",
    ]);
    assert.equal(sandboxPods?.items.length, 0, "no sandbox runs");
    await deleteAndWait(namespace, "sandboxfleet", "pool");
    await survivesDeletion(namespace, "deployment", "pool-sandbox", deployment);
  });

  it("a SandboxFleet's sandboxes are reachable only by the operator, the gateway and its agents", async () => {
    const namespace = ns.policy;
    const fleet = (name: string, extra: Record<string, unknown> = {}) =>
      apply({
        apiVersion: AGENTRY,
        kind: "SandboxFleet",
        metadata: { name, namespace },
        spec: { template: { image: "registry.example/sandbox:1" }, minReplicas: 1, maxReplicas: 2, ...extra },
      });
    await fleet("f");
    await fleet("g");
    await fleet("open", { networkPolicy: { enabled: false } });
    for (const [ws, f] of [
      ["alice", "f"],
      ["bob", "g"],
    ])
      await apply({
        apiVersion: AGENTRY,
        kind: "Workspace",
        metadata: { name: ws, namespace },
        spec: { fleetRef: { name: f } },
      });
    const agents: [string, string | undefined][] = [
      ["coder", "alice"],
      ["reviewer", "bob"],
      ["loner", undefined],
    ];
    for (const [name, ws] of agents)
      await apply({
        apiVersion: AGENTRY,
        kind: "AgentRuntime",
        metadata: { name, namespace },
        spec: { image: "registry.example/agent:1", ...(ws ? { workspaceRef: { name: ws } } : {}) },
      });
    // Someone else's pod in the namespace, and one wearing the labels of the gateway.
    for (const [name, labels] of [
      ["tenant", { app: "tenant" }],
      ["fake-gateway", { "app.kubernetes.io/name": "agentry-gateway" }],
    ] as const)
      await apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace, labels },
        spec: { containers: [{ name: "c", image: "registry.example/x:1" }] },
      });

    type PodList = { items: { metadata: { name: string; labels?: Record<string, string> } }[] };
    const pods = await waitFor("every agent's Pod and a sandbox of each fleet", async () => {
      const list = await getJson<PodList>(["pods", "-n", namespace]);
      const names = new Set(list?.items.map((p) => p.metadata.name));
      const fleets = new Set(list?.items.map((p) => p.metadata.labels?.["agentry.dev/sandbox-fleet"]));
      const agentPods = [...names].map((n) => n.replace(/-[0-9a-z]{10}$/, ""));
      return agents.every(([a]) => agentPods.includes(a)) && ["f", "g", "open"].every((f) => fleets.has(f))
        ? list!.items
        : undefined;
    });
    const policies = await waitFor("the NetworkPolicies of f and g, f's naming coder", async () => {
      const list = await getJson<{ items: Policy[] }>(["networkpolicies", "-n", namespace]);
      const f = list?.items.find((p) => p.metadata.name === "f-sandbox");
      const coderIn = JSON.stringify(f?.spec.ingress ?? []).includes('"agentry.dev/agent-runtime":"coder"');
      return coderIn && list!.items.some((p) => p.metadata.name === "g-sandbox") ? list!.items : undefined;
    });
    assert.ok(!policies.some((p) => p.metadata.name === "open-sandbox"), "the opted-out fleet has none");
    // The agents' own managed policies are there too (on by default).
    for (const [a] of agents)
      assert.ok(
        policies.some((p) => p.metadata.name === a),
        `policy of agent ${a}`,
      );

    const inNs = (namespace: string, labels: Record<string, string>) => ({
      namespace,
      labels,
      namespaceLabels: { "kubernetes.io/metadata.name": namespace },
    });
    const chart = (component: string) =>
      inNs(SYSTEM, {
        "app.kubernetes.io/name": `agentry-${component}`,
        "app.kubernetes.io/instance": "agentry",
        "app.kubernetes.io/part-of": "agentry",
      });
    const sources = new Map<string, ReturnType<typeof inNs>>([
      ["operator", chart("operator")],
      ["gateway", chart("gateway")],
      ["webhook", chart("webhook")],
      // An agent's pod by its AgentRuntime's name (the pod's is `<agent>-<template hash>`).
      ...pods.map(
        (p) =>
          [
            `pod ${p.metadata.labels?.["agentry.dev/agent-runtime"] ?? p.metadata.name}`,
            inNs(namespace, p.metadata.labels ?? {}),
          ] as const,
      ),
    ]);
    const sandboxOf = (f: string) =>
      pods.find((p) => p.metadata.labels?.["agentry.dev/sandbox-fleet"] === f)!.metadata.labels!;
    const reach = (f: string) =>
      [...sources]
        .filter(([, from]) => connectionAllowed(policies, from, inNs(namespace, sandboxOf(f)), 8080))
        .map(([name]) => name)
        .sort();
    assert.deepEqual(reach("f"), ["gateway", "operator", "pod coder"]);
    assert.deepEqual(reach("g"), ["gateway", "operator", "pod reviewer"]);
    assert.ok(reach("open").includes("pod tenant"), "without its policy, anyone reaches the sandboxes");
    // And only on the runtime's port.
    assert.equal(
      connectionAllowed(policies, sources.get("pod coder")!, inNs(namespace, sandboxOf("f")), 22),
      false,
    );

    // The agent leaves the fleet (another workspace): the policy follows.
    await apply({
      apiVersion: AGENTRY,
      kind: "Workspace",
      metadata: { name: "carol", namespace },
      spec: { fleetRef: { name: "g" } },
    });
    const r = await kubectl([
      "patch",
      "ar",
      "coder",
      "-n",
      namespace,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { workspaceRef: { name: "carol" } } }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor("f's policy without coder, g's with it", async () => {
      const list = await getJson<{ items: Policy[] }>(["networkpolicies", "-n", namespace]);
      const text = (name: string) => JSON.stringify(list?.items.find((p) => p.metadata.name === name)?.spec);
      return !text("f-sandbox").includes('"coder"') && text("g-sandbox").includes('"coder"');
    });
  });
});
