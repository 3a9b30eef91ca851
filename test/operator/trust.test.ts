// Data-plane trust end to end, with the real operator, a real gateway process and real
// sandbox and agent runtime processes behind kwok's pods: the operator's key ring rotates on
// its period (a fast one here), every namespace's trust bundle follows it and carries the
// gateway's published keys, the tokens Secret is signed again with the new key, and calls
// keep working across rotations. A tokens Secret agentry did not make is left alone.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { api, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";
import { gatewayWithTokens } from "../chaos/processes.ts";
import { TokenVerifier } from "../../lib/tokens.ts";

const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
const custom = () => api(k8s.CustomObjectsApi);
const core = () => api(k8s.CoreV1Api);
type Ring = { current: { kid: string }; next: { kid: string }; previous?: { kid: string } };

async function create(namespace: string, plural: string, kind: string, name: string, spec: unknown) {
  await custom().createNamespacedCustomObject({
    ...group(plural),
    namespace,
    body: { apiVersion: "agentry.dev/v1alpha1", kind, metadata: { name }, spec },
  });
}
const phase = async (namespace: string, plural: string, name: string) =>
  (
    (await custom().getNamespacedCustomObject({ ...group(plural), namespace, name })) as {
      status?: { phase?: string };
    }
  ).status?.phase;
const secretData = async (namespace: string, name: string) => {
  const s = await core().readNamespacedSecret({ namespace, name });
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
};
const kidsOf = (data: Record<string, string> | undefined) =>
  Object.keys(data ?? {})
    .map((f) => f.replace(/\.pem$/, ""))
    .sort();

describe("data-plane trust", () => {
  it("rotates the signing key; bundles, the gateway's keys and stored tokens follow; calls keep working", async (t) => {
    const ns = await testNamespace(t);
    const pods = await PodBackends.start({ namespaces: [ns] });
    t.after(() => pods.stop());
    const gateway = await gatewayWithTokens(t, {}, { POD_NAMESPACE: ns });
    const operator = await startOperator(t, {
      namespaces: [ns],
      podAddressMap: pods.mapFile,
      args: ["--signing-key-rotation=8s", "--signing-key-grace=4s"],
    });
    await create(ns, "sandboxfleets", "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
      samplingInterval: "250ms",
    });
    await create(ns, "workspaces", "Workspace", "ws", { fleetRef: { name: "fleet" } });
    await create(ns, "agentruntimes", "AgentRuntime", "agent", {
      image: "registry.example/agent:1",
      workspaceRef: { name: "ws" },
    });
    await create(ns, "pipelines", "Pipeline", "nightly", {
      schedule: "@daily",
      steps: [{ name: "ask", agentRef: { name: "agent" }, input: "hello" }],
    });
    await waitFor(
      "the agent Ready (its workspace token works)",
      async () => (await phase(ns, "agentruntimes", "agent")) === "Ready",
      {
        timeoutMs: 90_000,
      },
    );

    const ring = async () =>
      JSON.parse((await secretData(ns, "agentry-operator-signing-key"))["keyring.json"]!) as Ring;
    const bundle = async () =>
      (await core().readNamespacedConfigMap({ namespace: ns, name: "agentry-trust" })).data ?? {};
    const gatewayKids = kidsOf(
      (
        await waitFor("the gateway's public keys", () =>
          core()
            .readNamespacedConfigMap({ namespace: ns, name: "agentry-gateway-public-keys" })
            .catch(() => undefined),
        )
      ).data,
    );
    assert.equal(gatewayKids.length, 2, "the gateway publishes its current and next key");
    const gatewaySecret = await secretData(ns, "agentry-gateway-signing-key");
    assert.ok(gatewaySecret["keyring.json"], "the gateway keeps its own key ring");

    // The bundle: the operator's current and next key and the gateway's, public only.
    const r0 = await ring();
    await waitFor("the bundle to hold the operator's and the gateway's keys", async () => {
      const kids = kidsOf(await bundle());
      return [r0.current.kid, r0.next.kid, ...gatewayKids].every((k) => kids.includes(k));
    });
    for (const pem of Object.values(await bundle())) {
      assert.match(pem, /^-----BEGIN PUBLIC KEY-----/);
      assert.doesNotMatch(pem, /PRIVATE/);
    }

    // A rotation: next signs, current stays trusted for the grace period, then goes.
    const r1 = await waitFor("a rotation", async () => {
      const r = await ring();
      return r.current.kid === r0.next.kid ? r : undefined;
    });
    assert.equal(r1.previous?.kid, r0.current.kid);
    await waitFor("the bundle to publish the new next key", async () =>
      kidsOf(await bundle()).includes(r1.next.kid),
    );
    await waitFor("the replaced key to leave the bundle after its grace", async () => {
      const kids = kidsOf(await bundle());
      return !kids.includes(r0.current.kid) && gatewayKids.every((k) => kids.includes(k));
    });

    // The stored tokens are signed again with the signing key, and verify against the bundle.
    const tokens = await waitFor(
      "the stored tokens re-signed after the rotation, valid for the bundle",
      async () => {
        const r = await ring();
        const data = await secretData(ns, "agentry-tokens");
        const ws = data["workspace.ws"];
        if (!ws || decodeProtectedHeader(ws).kid !== r.current.kid || r.current.kid === r0.current.kid)
          return undefined;
        const verifier = new TokenVerifier({
          keys: Object.values(await bundle()).map((pem) => createPublicKey(pem)),
        });
        try {
          await verifier.verify(`Bearer ${ws}`, { audiences: [`workspace:${ns}.ws`], scope: "exec" });
          await verifier.verify(`Bearer ${data["agent.agent"]}`, {
            audiences: [`agent:${ns}/agent`],
            scope: "tasks",
          });
        } catch {
          return undefined; // a rotation in between: look again
        }
        return data;
      },
    );
    const ws = decodeJwt(tokens["workspace.ws"]!);
    assert.deepEqual(
      [ws.aud, ws.scope, ws.iss, ws.exp! - ws.iat!],
      [`workspace:${ns}.ws`, ["files", "exec"], "agentry-operator", 900],
    );
    const tasks = decodeJwt(tokens["agent.agent"]!);
    assert.deepEqual([tasks.aud, tasks.scope], [`agent:${ns}/agent`, ["tasks"]]);

    // Two rotations later the operator's calls still work: a new workspace gets placed and
    // confirmed (a PUT signed with a rotated key), and the dispatcher's token runs a task.
    await waitFor("another rotation", async () => (await ring()).current.kid === r1.next.kid);
    await create(ns, "workspaces", "Workspace", "ws2", { fleetRef: { name: "fleet" } });
    await waitFor("the new workspace Ready", async () => (await phase(ns, "workspaces", "ws2")) === "Ready");
    // The agent's process is backed (its address known) once its pod is; its trust
    // directory follows the bundle as a kubelet refreshes a volume.
    await waitFor("a task the agent runs with the operator's stored token", async () => {
      const agent = pods.agentAddressOf(ns, "agent");
      if (!agent) throw new Error("the agent's pod has no process yet");
      const task = await fetch(`http://${agent}/v1/tasks`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${(await secretData(ns, "agentry-tokens"))["agent.agent"]}`,
        },
        body: JSON.stringify({ input: "still works" }),
      });
      if (task.status !== 200) throw new Error(`${task.status}: ${await task.text()}`);
      return true;
    });
    assert.ok(operator.logs.some((l) => l.message === "rotated the signing key"));
    assert.ok(gateway.logs.some((l) => l.includes("created a signing key ring")));
  });

  it("leaves a tokens Secret it did not make alone, and says so", async (t) => {
    const ns = await testNamespace(t);
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "agentry-tokens" }, stringData: { mine: "do not touch" } },
    });
    await startOperator(t, { namespaces: [ns], leaderElect: false });
    await create(ns, "agentruntimes", "AgentRuntime", "agent", { image: "registry.example/agent:1" });
    await create(ns, "pipelines", "Pipeline", "nightly", {
      schedule: "@daily",
      steps: [{ name: "ask", agentRef: { name: "agent" }, input: "hello" }],
    });
    const event = await waitFor("a TrustConflict event", async () => {
      const list = await core().listNamespacedEvent({ namespace: ns, fieldSelector: "reason=TrustConflict" });
      return list.items[0];
    });
    assert.match(event.message ?? "", /Secret .*agentry-tokens exists and was not made by agentry/);
    assert.deepEqual(await secretData(ns, "agentry-tokens"), { mine: "do not touch" });
  });
});
