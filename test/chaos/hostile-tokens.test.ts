// Issue 17, hostile tenant: the data plane's tokens, against the real operator and real
// sandbox and agent runtime processes behind kwok's pods (test/harness/pods.ts). Two tenant
// namespaces, A and B, each with a SandboxFleet and Workspaces; A also has an AgentRuntime
// working in its workspace and a Pipeline naming that agent, so the operator keeps tokens
// for both in A's `agentry-tokens` Secret. The test plays the tenant:
// - with no token (or a forged, or an expired one) every sandbox and agent call is a 401;
// - A's real tokens (read from A's Secret, as a leak would give them) open only what they
//   name: A's workspace token is a 403 on B's workspace, on A's other workspace and on the
//   pod's own routes; the dispatcher's tasks token is a 403 anywhere but the agent's tasks;
// - a key the tenant adds to A's trust bundle is taken out again at once;
// - a Pod made to look like a sandbox of A's fleet (its labels, and owner references that
//   name the fleet or its Deployment as controller) is never called, so it receives no
//   token, and nothing is placed on it;
// - an agent Pod whose /readyz redirects: the operator asks it (with a token for that pod
//   and scope status only) and does not follow the redirect.
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { decodeJwt } from "jose";
import { agentPod, api, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";
import { testTrust } from "../harness/tokens.ts";
import { TokenSigner } from "../../lib/tokens.ts";

const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);
const core = () => api(k8s.CoreV1Api);
const FAST = {
  samplingInterval: "200ms",
  cooldown: "0s",
  scaleUpWindow: 1,
  scaleDownWindow: 2,
  idleTTL: "30s",
};

const cleanups: (() => Promise<void> | void)[] = [];
const suite = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
let a: string;
let b: string;
let pods: PodBackends;
let operator: OperatorProcess;
/** Where each workspace lives: the sandbox pod's loopback address. */
const home = {} as Record<"a" | "a2" | "b", { pod: string; address: string }>;
let agentAddress: string;
let agentPodName: string;
/** A's tokens Secret as a leak would give it: key → token. */
let leaked: Record<string, string>;

async function create(namespace: string, plural: string, kind: string, name: string, spec: unknown) {
  await custom().createNamespacedCustomObject({
    ...group(plural),
    namespace,
    body: { apiVersion: "agentry.dev/v1alpha1", kind, metadata: { name }, spec },
  });
}

const workspaceHome = (namespace: string, name: string) =>
  waitFor(`workspace ${namespace}/${name} Ready`, async () => {
    const ws = (await custom().getNamespacedCustomObject({ ...group("workspaces"), namespace, name })) as {
      status?: { phase?: string; sandboxPod?: string };
    };
    const pod = ws.status?.phase === "Ready" ? ws.status.sandboxPod : undefined;
    const address = pod ? pods.addressOf(namespace, pod) : undefined;
    return pod && address ? { pod, address } : undefined;
  });

interface Answer {
  status: number;
  type: string | null;
  detail: string;
}
async function call(
  address: string,
  method: string,
  path: string,
  token?: string,
  body?: string,
): Promise<Answer> {
  const res = await fetch(`http://${address}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    ...(body !== undefined ? { body } : {}),
    redirect: "manual",
  });
  const text = await res.text();
  let detail = text;
  try {
    detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
  } catch {
    // not a problem document
  }
  return { status: res.status, type: res.headers.get("content-type"), detail };
}

/** A loopback server that records every request and answers with `answer`. */
async function recorder(
  answer: (req: { url: string }) => { status: number; headers?: Record<string, string>; body?: string },
) {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    const a = answer({ url: req.url ?? "" });
    res.writeHead(a.status, a.headers ?? {});
    res.end(a.body ?? "");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => void server.close());
  return { seen, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("hostile tenant: data-plane tokens", () => {
  before(async () => {
    a = await testNamespace({ ...suite, name: "tokens-a" });
    b = await testNamespace({ ...suite, name: "tokens-b" });
    pods = await PodBackends.start({ namespaces: [a, b] });
    cleanups.push(() => pods.stop());
    operator = await startOperator(suite, { namespaces: [a, b], podAddressMap: pods.mapFile });
    for (const ns of [a, b])
      await create(ns, "sandboxfleets", "SandboxFleet", "fleet", {
        template: { image: "registry.example/sandbox:1" },
        minReplicas: 2,
        maxReplicas: 4,
        warmEmpty: 1,
        ...FAST,
      });
    await create(a, "workspaces", "Workspace", "ws", { fleetRef: { name: "fleet" }, ownerId: "alice" });
    await create(a, "workspaces", "Workspace", "ws2", { fleetRef: { name: "fleet" }, ownerId: "alice" });
    await create(b, "workspaces", "Workspace", "ws", { fleetRef: { name: "fleet" }, ownerId: "bob" });
    await create(a, "agentruntimes", "AgentRuntime", "agent", {
      image: "registry.example/agent:1",
      workspaceRef: { name: "ws" },
    });
    await create(a, "pipelines", "Pipeline", "nightly", {
      schedule: "@daily",
      steps: [{ name: "ask", agentRef: { name: "agent" }, input: "hello" }],
    });
    home.a = await workspaceHome(a, "ws");
    home.a2 = await workspaceHome(a, "ws2");
    home.b = await workspaceHome(b, "ws");
    assert.equal(home.a.pod, home.a2.pod, "one owner's workspaces share a sandbox");
    // The agent is Ready only once its sandbox answered it: its workspace token works.
    await waitFor(
      "the agent Ready",
      async () => {
        const ar = (await custom().getNamespacedCustomObject({
          ...group("agentruntimes"),
          namespace: a,
          name: "agent",
        })) as {
          status?: { phase?: string };
        };
        return ar.status?.phase === "Ready";
      },
      { timeoutMs: 90_000 },
    );
    agentAddress = await waitFor("the agent's process", () => pods.agentAddressOf(a, "agent"));
    agentPodName = (await agentPod(a, "agent"))!.metadata!.name!;
    leaked = await waitFor("the tokens Secret of A", async () => {
      const s = await core()
        .readNamespacedSecret({ namespace: a, name: "agentry-tokens" })
        .catch(() => undefined);
      const data = Object.fromEntries(
        Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
      );
      return data["agent.agent"] && data["workspace.ws"] ? data : undefined;
    });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("answers 401 to every sandbox and agent call without a valid token", async (t) => {
    const idA = `${a}.ws`;
    const sandboxCalls: [string, string, string?][] = [
      ["GET", "/status"],
      ["GET", "/workspaces"],
      ["POST", "/drain"],
      ["POST", "/undrain"],
      ["PUT", `/workspaces/${a}.mine`, "{}"],
      ["GET", `/workspaces/${idA}`],
      ["DELETE", `/workspaces/${idA}`],
      ["GET", `/workspaces/${idA}/files/secret.txt`],
      ["PUT", `/workspaces/${idA}/files/planted.txt`, "x"],
      ["POST", `/workspaces/${idA}/exec`, JSON.stringify({ command: ["id"] })],
      ["PUT", "/debug/load", JSON.stringify({ cpu: 1 })],
      ["GET", "/nope"],
    ];
    const agentCalls: [string, string, string?][] = [
      ["POST", "/v1/tasks", JSON.stringify({ input: "x" })],
      ["GET", "/v1/info"],
      ["POST", "/v1/workspace/exec", JSON.stringify({ command: ["id"] })],
      ["GET", "/v1/workspace/files/x"],
      ["POST", "/v1/workspace/files/x", "x"],
    ];
    // An attacker's own key, and the operator's real key signing a token that has expired.
    const forger = await testTrust();
    cleanups.push(() => forger.remove());
    const ring = await core().readNamespacedSecret({ namespace: a, name: "agentry-operator-signing-key" });
    const current = (
      JSON.parse(Buffer.from(ring.data!["keyring.json"]!, "base64").toString()) as {
        current: { privateKeyPem: string };
      }
    ).current;
    const past = new TokenSigner(
      createPrivateKey(current.privateKeyPem),
      "agentry-operator",
      () => Date.now() - 3_600_000,
    );
    const targets = [
      { address: home.a.address, pod: `${a}/${home.a.pod}`, calls: sandboxCalls },
      { address: home.b.address, pod: `${b}/${home.b.pod}`, calls: sandboxCalls },
      { address: agentAddress, pod: `${a}/${agentPodName}`, calls: agentCalls },
    ];
    let n = 0;
    for (const target of targets) {
      const forged = await forger.token(`pod:${target.pod}`);
      const expired = await past.sign({
        aud: `pod:${target.pod}`,
        scope: ["status", "placement", "drain", "files", "exec", "tasks"],
      });
      for (const [method, path, body] of target.calls)
        for (const [what, token] of [
          ["no token", undefined],
          ["garbage", "not-a-token"],
          ["a forged token", forged],
          ["an expired token", expired],
        ] as const) {
          const res = await call(target.address, method, path, token, body);
          assert.equal(
            res.status,
            401,
            `${what}: ${method} ${path} on ${target.pod}: ${res.status} ${res.detail}`,
          );
          assert.equal(res.type, "application/problem+json");
          n++;
        }
    }
    // The probes stay open, and say nothing: the agent's reason needs a token.
    assert.equal((await call(home.a.address, "GET", "/readyz")).status, 200);
    const ready = await call(agentAddress, "GET", "/readyz");
    assert.deepEqual([ready.status, JSON.parse(ready.detail)], [200, { status: "ready" }]);
    // Nothing happened: the workspace is still there, no file was planted.
    const pod = await pods.token(`pod:${a}/${home.a.pod}`, ["files"]);
    assert.equal(
      (await call(home.a.address, "GET", `/workspaces/${idA}/files/planted.txt`, pod)).status,
      404,
    );
    t.diagnostic(`${n} calls without a valid token, all 401`);
  });

  it("opens with A's leaked tokens only what they name: B's workspace, A's other workspace and the pods' routes are 403", async () => {
    const ws = leaked["workspace.ws"]!;
    const tasks = leaked["agent.agent"]!;
    assert.deepEqual(decodeJwt(ws).aud, `workspace:${a}.ws`);
    assert.deepEqual(decodeJwt(tasks).aud, `agent:${a}/agent`);
    // What it is for works.
    const exec = await call(
      home.a.address,
      "POST",
      `/workspaces/${a}.ws/exec`,
      ws,
      JSON.stringify({ command: ["echo", "mine"] }),
    );
    assert.equal(exec.status, 200, exec.detail);
    assert.equal(
      (await call(agentAddress, "POST", "/v1/tasks", tasks, JSON.stringify({ input: "hi" }))).status,
      200,
    );
    // Everything else does not.
    const refused: [string, string, string, string, string?][] = [
      [
        "B's workspace",
        home.b.address,
        "POST",
        `/workspaces/${b}.ws/exec`,
        JSON.stringify({ command: ["id"] }),
      ],
      ["B's workspace's files", home.b.address, "GET", `/workspaces/${b}.ws/files/x`],
      [
        "A's other workspace on the same sandbox",
        home.a.address,
        "POST",
        `/workspaces/${a}.ws2/exec`,
        JSON.stringify({ command: ["id"] }),
      ],
      ["A's sandbox's status", home.a.address, "GET", "/status"],
      ["the list of A's workspaces", home.a.address, "GET", "/workspaces"],
      ["placing on A's sandbox", home.a.address, "PUT", `/workspaces/${a}.intruder`, "{}"],
      ["removing A's workspace", home.a.address, "DELETE", `/workspaces/${a}.ws`],
      ["draining A's sandbox", home.a.address, "POST", "/drain"],
      ["the agent's tasks", agentAddress, "POST", "/v1/tasks", JSON.stringify({ input: "x" })],
      [
        "the agent's workspace exec",
        agentAddress,
        "POST",
        "/v1/workspace/exec",
        JSON.stringify({ command: ["id"] }),
      ],
    ];
    for (const [what, address, method, path, body] of refused) {
      const res = await call(address, method, path, ws, body);
      assert.equal(res.status, 403, `workspace token on ${what}: ${res.status} ${res.detail}`);
      assert.equal(res.type, "application/problem+json");
    }
    for (const [what, address, method, path, body] of [
      ["the agent's info", agentAddress, "GET", "/v1/info"],
      ["the agent's workspace files", agentAddress, "GET", "/v1/workspace/files/x"],
      ["A's workspace", home.a.address, "GET", `/workspaces/${a}.ws/files/x`],
      [
        "B's workspace",
        home.b.address,
        "POST",
        `/workspaces/${b}.ws/exec`,
        JSON.stringify({ command: ["id"] }),
      ],
    ] as const) {
      const res = await call(address, method, path, tasks, body);
      assert.equal(res.status, 403, `tasks token on ${what}: ${res.status} ${res.detail}`);
    }
    // B's workspace was untouched; the tokens never reached the operator's log.
    const bPod = await pods.token(`pod:${b}/${home.b.pod}`, ["status"]);
    assert.equal((await call(home.b.address, "GET", "/workspaces", bPod)).status, 200);
    const log = operator.logs.map((l) => JSON.stringify(l)).join("\n");
    for (const token of [ws, tasks]) assert.ok(!log.includes(token), "a token in the operator's log");
  });

  it("takes back the trust bundle when a tenant adds a key to it", async () => {
    const evil = await testTrust();
    cleanups.push(() => evil.remove());
    await core().patchNamespacedConfigMap(
      {
        namespace: a,
        name: "agentry-trust",
        body: { data: { [`${evil.key.kid}.pem`]: evil.key.publicKeyPem } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor(
      "the tenant's key gone from agentry-trust",
      async () => {
        const cm = await core().readNamespacedConfigMap({ namespace: a, name: "agentry-trust" });
        return !Object.keys(cm.data ?? {}).includes(`${evil.key.kid}.pem`);
      },
      { timeoutMs: 10_000 },
    );
  });

  it("never calls (so never sends a token to) a Pod made to look like a sandbox of the fleet", async (t) => {
    const real = await core().readNamespacedPod({ namespace: a, name: home.a.pod });
    const deployment = await api(k8s.AppsV1Api).readNamespacedDeployment({
      namespace: a,
      name: "fleet-sandbox",
    });
    const fleet = (await custom().getNamespacedCustomObject({
      ...group("sandboxfleets"),
      namespace: a,
      name: "fleet",
    })) as {
      metadata: { uid: string };
    };
    // Its labels, but not pod-template-hash: a pod matching the ReplicaSet's selector would
    // be adopted by the ReplicaSet controller itself (see test/chaos/README.md).
    const { "pod-template-hash": _hash, ...labels } = real.metadata!.labels!;
    const fakes = [
      { name: "fleet-sandbox-fake-labels", owners: [] },
      {
        name: "fleet-sandbox-fake-deployment",
        owners: [
          {
            apiVersion: "apps/v1",
            kind: "Deployment",
            name: "fleet-sandbox",
            uid: deployment.metadata!.uid!,
            controller: true,
          },
        ],
      },
      {
        name: "fleet-sandbox-fake-fleet",
        owners: [
          {
            apiVersion: "agentry.dev/v1alpha1",
            kind: "SandboxFleet",
            name: "fleet",
            uid: fleet.metadata.uid,
            controller: true,
          },
        ],
      },
    ];
    const seen = await recorder(() => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: "{}",
    }));
    for (const f of fakes) {
      pods.stand(a, f.name, seen.address);
      await core().createNamespacedPod({
        namespace: a,
        body: {
          metadata: { name: f.name, labels, ownerReferences: f.owners },
          spec: { containers: [{ name: "sandbox", image: "registry.example/evil:1" }] },
        },
      });
    }
    await waitFor("the fake pods Ready behind the test's server", async () => {
      const list = await core().listNamespacedPod({
        namespace: a,
        labelSelector: "agentry.dev/sandbox-fleet=fleet",
      });
      return fakes.every((f) =>
        list.items.some(
          (p) =>
            p.metadata?.name === f.name &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        ),
      );
    });
    // They are in the operator's address map, ready: only the owner check keeps it away.
    await waitFor("the fakes in the address map", () =>
      fakes.every((f) => pods.addressOf(a, f.name) === seen.address),
    );
    // An empty ready "sandbox" is what a new owner's workspace takes: the fakes would be it.
    await create(a, "workspaces", "Workspace", "ws-carol", { fleetRef: { name: "fleet" }, ownerId: "carol" });
    const carol = await workspaceHome(a, "ws-carol");
    assert.ok(!fakes.some((f) => f.name === carol.pod), `placed on ${carol.pod}`);
    const events = await waitFor("a ForeignPod event per fake", async () => {
      const list = await core().listNamespacedEvent({ namespace: a });
      const foreign = list.items.filter((e) => e.reason === "ForeignPod");
      return fakes.every((f) => foreign.some((e) => e.message?.includes(f.name))) ? foreign : undefined;
    });
    // Many sampling rounds later (200 ms each), the fakes have still never been called.
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(seen.seen, [], "the operator called a pod it did not create");
    t.diagnostic(`fake pods never called; events: ${events.map((e) => e.message).join(" | ")}`);
  });

  it("asks an agent Pod's /readyz with a token for that Pod only, and does not follow its redirect", async () => {
    const target = await recorder(() => ({
      status: 503,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "error", reason: "the redirect was followed" }),
    }));
    const redirector = await recorder(() => ({
      status: 307,
      headers: { location: `http://${target.address}/readyz` },
    }));
    pods.standAgent(a, "redirector", redirector.address, { ready: false });
    await create(a, "agentruntimes", "AgentRuntime", "redirector", { image: "registry.example/agent:1" });
    await waitFor("two readiness probes by the operator", () => redirector.seen.length >= 2, {
      timeoutMs: 60_000,
    });
    const auth = redirector.seen[0]!.headers.authorization ?? "";
    const claims = decodeJwt(auth.replace(/^Bearer /, ""));
    assert.match(String(claims.aud), new RegExp(`^pod:${a}/redirector-[0-9a-z]{10}$`));
    assert.deepEqual(claims.scope, ["status"]);
    assert.ok((claims.exp ?? 0) - (claims.iat ?? 0) <= 300, "short-lived");
    assert.deepEqual(target.seen, [], "the redirect was followed");
    const ar = (await custom().getNamespacedCustomObject({
      ...group("agentruntimes"),
      namespace: a,
      name: "redirector",
    })) as {
      status?: { readinessReason?: string };
    };
    assert.doesNotMatch(ar.status?.readinessReason ?? "", /redirect was followed/);
  });
});
