// A SandboxFleet and an AgentRuntime on the real control plane with real containers behind
// their kwok pods (PodBackends with runtime "container"): the operator (a process) places
// workspaces on sandbox containers, reads their load, drains one before a pinned size
// removes it, and probes the agent container; files and exec go through the sandbox API of
// the container the operator chose, and through the agent container to its workspace.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { KubeClient } from "../../lib/kube/client.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { publishPublicKeys, SecretKeyRing } from "../../lib/keyring.ts";
import { silentLogger } from "../../lib/log.ts";
import { api, kubeConfig, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { ADMIN_TOKEN, startGateway } from "../gateway/harness.ts";
import { containerObstacle, containersOr, podman } from "../harness/containers.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";

const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);
const LIMITS = { limits: { cpu: "1", memory: "512Mi" }, requests: { cpu: "100m", memory: "128Mi" } };

type Ws = { status?: { phase?: string; sandboxPod?: string; endpoint?: string } };
type Exec = { exitCode: number | null; stdout: string; stderr: string };

let namespace = "";
let pods: PodBackends | undefined;
let operator: OperatorProcess | undefined;
let ring: SecretKeyRing | undefined;
const cleanups: (() => Promise<unknown> | void)[] = [];
const suite = { name: "fleet-containers", after: (fn: () => Promise<void>) => void cleanups.push(fn) };

const getWs = async (name: string) =>
  (await custom().getNamespacedCustomObject({ ...group("workspaces"), namespace, name })) as Ws;
const readyWs = (name: string) =>
  waitFor(
    `workspace ${name} Ready on a sandbox container`,
    async () => {
      const w = await getWs(name);
      return w.status?.phase === "Ready" && w.status.sandboxPod ? w : undefined;
    },
    { timeoutMs: 120_000 },
  );

async function createWorkspace(name: string, ownerId: string): Promise<void> {
  await custom().createNamespacedCustomObject({
    ...group("workspaces"),
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name },
      spec: { fleetRef: { name: "fleet" }, ownerId },
    },
  });
}

/** The authorization header of a token for `aud` (signed by the harness's key, which every backed container trusts). */
const bearer = async (aud: string): Promise<Record<string, string>> => ({
  authorization: `Bearer ${await pods!.token(aud, ["status", "drain", "files", "exec", "tasks"])}`,
});

async function post<T>(url: string, body: unknown, auth: Record<string, string>): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const RESTRICTED = { uid: "65532", capEff: "0000000000000000", noNewPrivs: "1", readOnlyRoot: true };

/** The container behind a pod as its main process sees itself (/proc/1/status) and podman runs it. */
async function confinement(pod: string) {
  const name = pods!.containerOf(namespace, pod);
  assert.ok(name, `a container backs ${pod}`);
  const status = (await podman(["exec", name, "cat", "/proc/1/status"])).stdout;
  const field = (f: string) => new RegExp(`^${f}:\\s+(\\S+)`, "m").exec(status)?.[1];
  const ro = await podman(["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name]);
  return {
    uid: field("Uid"),
    capEff: field("CapEff"),
    noNewPrivs: field("NoNewPrivs"),
    readOnlyRoot: ro.stdout.trim() === "true",
  };
}

describe("a SandboxFleet and an AgentRuntime backed by real containers", () => {
  before(async () => {
    if (containerObstacle()) return; // each test skips (or fails under CI) with the reason
    namespace = await testNamespace(suite);
    pods = await PodBackends.start({ namespaces: [namespace], runtime: "container" });
    cleanups.push(() => pods?.stop());
    // The gateway's signing key, published where the operator puts it into every trust bundle
    // the containers mount: the gateway calls them with tokens of its own.
    const kube = new KubeClient(kubeConfig());
    ring = new SecretKeyRing(kube, {
      namespace,
      name: "agentry-gateway-signing-key",
      issuer: "agentry-gateway",
      policy: { rotateEveryMs: 86_400_000, graceMs: 3_600_000 },
      log: silentLogger(),
    });
    await ring.sync();
    await publishPublicKeys(
      kube,
      { namespace, name: "agentry-gateway-public-keys", owner: "agentry-gateway" },
      ring.publicKeys(),
    );
    operator = await startOperator(suite, {
      namespaces: [namespace],
      podAddressMap: pods.mapFile,
      leaderElect: false,
    });
    await custom().createNamespacedCustomObject({
      ...group("sandboxfleets"),
      namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "SandboxFleet",
        metadata: { name: "fleet" },
        spec: {
          template: { image: "localhost/agentry/sandbox:test", resources: LIMITS },
          minReplicas: 1,
          maxReplicas: 4,
          warmEmpty: 1,
          samplingInterval: "500ms",
          cooldown: "0s",
          scaleUpWindow: 1,
          scaleDownWindow: 2,
          idleTTL: "1s",
          drainTimeout: "3s",
        },
      },
    });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("places a workspace on a sandbox container; files and exec run there as uid 65532 on a read-only root", async (t) => {
    if (!containersOr(t)) return;
    await createWorkspace("w-a", "alice");
    const ws = await readyWs("w-a");
    const pod = ws.status!.sandboxPod!;
    assert.deepEqual(await confinement(pod), RESTRICTED);
    const address = pods!.addressOf(namespace, pod);
    assert.match(address ?? "", /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(await pods!.workspacesOn(namespace, pod), [`${namespace}.w-a`]);
    // The endpoint the operator recorded, reached through the container's loopback address.
    const path = new URL(ws.status!.endpoint!).pathname;
    const base = `http://${address}${path}`;
    // A token for the workspace opens its files and exec; nothing opens without one.
    const wsAuth = await bearer(`workspace:${namespace}.w-a`);
    const refused = await fetch(`${base}/files/src/hello.txt`, { method: "PUT", body: "x" });
    assert.equal(refused.status, 401);
    const put = await fetch(`${base}/files/src/hello.txt`, {
      method: "PUT",
      body: "from the test",
      headers: wsAuth,
    });
    assert.equal(put.status, 201);
    const cat = await post<Exec>(`${base}/exec`, { command: ["cat", "src/hello.txt"] }, wsAuth);
    assert.deepEqual([cat.exitCode, cat.stdout], [0, "from the test"]);
    const who = await post<Exec>(`${base}/exec`, { command: ["sh", "-c", "id -u; touch /app/x"] }, wsAuth);
    assert.equal(who.stdout.trim(), "65532");
    assert.match(who.stderr, /Read-only file system|Permission denied/);
    // The operator reads the container's load (calm, pinned by the harness) into the fleet.
    const status = (await (
      await fetch(`http://${address}/status`, { headers: await bearer(`pod:${namespace}/${pod}`) })
    ).json()) as { workspaces: number };
    assert.equal(status.workspaces, 1);
  });

  it("the gateway's data plane reaches the workspace in its sandbox container: files and exec", async (t) => {
    if (!containersOr(t)) return;
    await readyWs("w-a");
    const gw = await startGateway(suite, {
      dataPlane: {
        addresses: new PodAddresses(pods!.mapFile),
        signer: () => ring!.signer(),
        maxUploadBytes: 1024 * 1024,
        maxExecSeconds: 60,
      },
    });
    const base = `/v1/namespaces/${namespace}/workspaces/w-a`;
    await waitFor(
      "the workspace to answer through the gateway (the container trusts its key)",
      async () => (await gw.call("GET", `${base}/files`)).status === 200,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const file = `${gw.url}${base}/files/content?path=${encodeURIComponent("notes/from-gateway.txt")}`;
    const put = await fetch(file, {
      method: "PUT",
      headers: { ...auth, "content-type": "text/plain" },
      body: "through the gateway",
    });
    assert.equal(put.status, 201, await put.clone().text());
    const read = await fetch(file, { headers: auth });
    assert.equal(await read.text(), "through the gateway");
    const exec = await gw.call("POST", `${base}/exec`, {
      body: { command: ["sh", "-c", "id -u; cat notes/from-gateway.txt; exit 3"] },
    });
    assert.equal(exec.status, 200, JSON.stringify(exec.body));
    assert.deepEqual([exec.body.exitCode, exec.body.stdout], [3, "65532\nthrough the gateway"]);
  });

  it("an AgentRuntime on that workspace runs in an agent container that reaches the sandbox container", async (t) => {
    if (!containersOr(t)) return;
    await readyWs("w-a");
    await custom().createNamespacedCustomObject({
      ...group("agentruntimes"),
      namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "agent" },
        spec: {
          image: "localhost/agentry/agent:test",
          model: { provider: "echo", model: "echo-1" },
          workspaceRef: { name: "w-a" },
          resources: LIMITS,
        },
      },
    });
    await waitFor(
      "the AgentRuntime Ready (the operator probed the agent container)",
      async () => {
        const ar = (await custom().getNamespacedCustomObject({
          ...group("agentruntimes"),
          namespace,
          name: "agent",
        })) as { status?: { phase?: string } };
        return ar.status?.phase === "Ready" ? true : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const pod = await waitFor("the agent's pod", async () => {
      const p = await api(k8s.CoreV1Api).listNamespacedPod({
        namespace,
        labelSelector: "agentry.dev/agent-runtime=agent",
      });
      return p.items[0]?.metadata?.name;
    });
    await waitFor("the agent container to listen", () => pods!.containerOf(namespace, pod), {
      timeoutMs: 60_000,
    });
    assert.deepEqual(await confinement(pod), RESTRICTED);
    const agent = `http://${pods!.addressOf(namespace, pod)}`;
    // Ready only once the sandbox container accepted the agent's workspace token (mounted
    // from the namespace's tokens Secret into the agent container).
    await waitFor("the agent ready with its workspace", async () => (await fetch(`${agent}/readyz`)).ok);
    const auth = await bearer(`agent:${namespace}/agent`);
    const upload = await fetch(`${agent}/v1/workspace/files/notes/agent.txt`, {
      method: "POST",
      body: "written through the agent",
      headers: auth,
    });
    assert.equal(upload.status, 201, await upload.clone().text());
    const exec = await post<Exec>(
      `${agent}/v1/workspace/exec`,
      { command: ["sh", "-c", "cat notes/agent.txt src/hello.txt; id -u"] },
      auth,
    );
    assert.deepEqual([exec.exitCode, exec.stdout], [0, "written through the agentfrom the test65532\n"]);
    const task = await post<{ output: string }>(`${agent}/v1/tasks`, { input: "echo me" }, auth);
    assert.equal(task.output, "echo me");

    // A pod that runs but is not ready (as after a failed kubelet probe): the operator asks the
    // agent itself (GET /readyz), through the address map, i.e. the agent container.
    await api(k8s.CoreV1Api).patchNamespacedPodStatus(
      {
        name: pod,
        namespace,
        body: { status: { conditions: [{ type: "Ready", status: "False", reason: "ContainersNotReady" }] } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const probed = await waitFor("the operator to dial the agent container", () =>
      operator!.logs.find((l) => l.message === "pod address" && l.pod === `${namespace}/${pod}`),
    );
    assert.deepEqual([probed.via, probed.address], ["map", pods!.addressOf(namespace, pod)]);
  });

  it("drains a sandbox container holding a workspace before a pinned size removes it; its container stops cleanly", async (t) => {
    if (!containersOr(t)) return;
    const a = await readyWs("w-a");
    await createWorkspace("w-b", "bob");
    const b = await readyWs("w-b");
    assert.notEqual(a.status?.sandboxPod, b.status?.sandboxPod, "owners do not share a sandbox");
    const occupied = [a, b].map((w) => w.status!.sandboxPod!);
    const backing = new Map(
      occupied.map((pod) => [
        pod,
        { address: pods!.addressOf(namespace, pod)!, container: pods!.containerOf(namespace, pod)! },
      ]),
    );
    const res = await kubectl(["scale", "sbf/fleet", "-n", namespace, "--replicas=1"]);
    assert.equal(res.code, 0, res.stderr);
    // One of the two occupied sandboxes must go: the operator drains it (POST /drain on its
    // container) and, after drainTimeout, the Deployment removes it and its container stops.
    const drained = new Set<string>();
    const gone = await waitFor(
      "an occupied sandbox drained and its container gone",
      async () => {
        for (const [pod, { address, container }] of backing) {
          const s = await fetch(`http://${address}/status`, {
            headers: await bearer(`pod:${namespace}/${pod}`),
          })
            .then((r) => r.json() as Promise<{ draining: boolean }>)
            .catch(() => undefined);
          if (s?.draining) drained.add(pod);
          if ((await podman(["container", "exists", container])).code === 1) return pod;
        }
        return undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    assert.ok(drained.has(gone), `${gone} reported draining before it went`);
    const log = await readFile(join(pods!.dir, "logs", `${namespace}_${gone}.log`), "utf8");
    assert.match(log, /"message":"sandbox stopped"/, "its program stopped by itself on SIGTERM");
    const kept = occupied.find((p) => p !== gone)!;
    assert.ok(pods!.containerOf(namespace, kept), "the other sandbox's container still runs");
  });
});
