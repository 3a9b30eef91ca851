// The trust reconciler on fakes (test/harness/fakekube.ts): what it reads and writes per pass
// of a namespace, with the clock moved by the test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../lib/kube/client.ts";
import { Metrics } from "../../lib/kube/metrics.ts";
import { TypedInformer } from "../../lib/kube/typed.ts";
import { silentLogger } from "../../lib/log.ts";
import { FakeClock, FakeInformer, RecordingClient, RecordingRecorder } from "../../test/harness/fakekube.ts";
import { STORED_TOKEN_REFRESH_MS, TOKENS_SECRET } from "./trust.desired.ts";
import { TRUST_EVENT_OBJECTS, TrustReconciler } from "./trust.ts";
import type { Controller } from "../../lib/kube/controller.ts";

const NS = "team";
const object = (kind: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind,
  metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 1 },
  spec,
});
const agent = (name: string, spec: Record<string, unknown> = {}) =>
  object("AgentRuntime", name, { image: "registry.example/agent:1", ...spec });
const pipeline = (name: string, agentName: string) =>
  object("Pipeline", name, {
    steps: [{ name: "ask", agentRef: { name: agentName }, command: ["do it"] }],
  });

function testbed() {
  const raw = {
    fleets: new FakeInformer("SandboxFleet"),
    agents: new FakeInformer("AgentRuntime"),
    pipelines: new FakeInformer("Pipeline"),
    trustConfigMaps: new FakeInformer("ConfigMap"),
  };
  const client = new RecordingClient([raw.trustConfigMaps]);
  const clock = new FakeClock();
  const ignore = () => undefined;
  const recorder = new RecordingRecorder();
  let keys = [{ kid: "k1", pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" }];
  const reconciler = new TrustReconciler({
    client,
    informers: {
      fleets: new TypedInformer("SandboxFleet", raw.fleets, ignore),
      agents: new TypedInformer("AgentRuntime", raw.agents, ignore),
      pipelines: new TypedInformer("Pipeline", raw.pipelines, ignore),
      trustConfigMaps: raw.trustConfigMaps,
    },
    keys: {
      bundle: () => keys,
      freshToken: (aud) => Promise.resolve(`token-for-${aud}`),
      signingKid: "k1",
    },
    recorder,
    metrics: new Metrics(false),
    log: silentLogger(),
    now: () => clock.now().getTime(),
  });
  const secretCalls = () =>
    client.calls.filter((c) => c.kind === "Secret").map((c) => `${c.verb} ${c.name ?? ""}`);
  const setKeys = (k: typeof keys) => {
    keys = k;
  };
  return { raw, client, clock, recorder, reconciler, secretCalls, setKeys };
}

describe("trust reconciler", () => {
  it("says a tokens Secret it did not make once, on a bounded number of the namespace's objects (Pipelines first)", async () => {
    const { raw, client, recorder, reconciler } = testbed();
    await client.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: TOKENS_SECRET, namespace: NS },
    });
    for (let i = 0; i < 3 * TRUST_EVENT_OBJECTS; i++) raw.agents.set(agent(`a${i}`));
    raw.pipelines.set(pipeline("p1", "a7"));
    await assert.rejects(reconciler.reconcile(NS), /exists and was not made by agentry/);
    assert.equal(recorder.events.length, TRUST_EVENT_OBJECTS);
    assert.ok(recorder.events.every((e) => e.type === "Warning" && e.reason === "TrustConflict"));
    assert.equal(recorder.events[0]?.object, `${NS}/p1`, "the Pipeline that needs the tokens first");
    assert.equal(new Set(recorder.events.map((e) => e.object)).size, TRUST_EVENT_OBJECTS, "each object once");
    await assert.rejects(reconciler.reconcile(NS));
    assert.equal(recorder.events.length, TRUST_EVENT_OBJECTS, "not again at the retry");
  });

  it("reads the tokens Secret of a namespace that needs no token once per refresh period, not at every pass", async () => {
    const { raw, client, clock, reconciler, secretCalls } = testbed();
    raw.agents.set(agent("a1"));
    await reconciler.reconcile(NS);
    assert.deepEqual(secretCalls(), [`get ${TOKENS_SECRET}`], "the first pass looks for a Secret to remove");
    assert.ok(
      client.calls.some((c) => c.verb === "create" && c.kind === "ConfigMap"),
      "the trust bundle is made",
    );

    client.clear();
    raw.agents.set(agent("a2"));
    await reconciler.reconcile(NS);
    raw.agents.set(agent("a3"));
    await reconciler.reconcile(NS);
    assert.deepEqual(client.calls, [], "further passes read and write nothing");

    clock.advance(STORED_TOKEN_REFRESH_MS);
    await reconciler.reconcile(NS);
    assert.deepEqual(secretCalls(), [`get ${TOKENS_SECRET}`], "looked again after the refresh period");
  });

  it("writes the tokens when a Pipeline needs them, and removes them at once when it goes", async () => {
    const { raw, client, reconciler, secretCalls } = testbed();
    raw.agents.set(agent("a1"));
    await reconciler.reconcile(NS);
    client.clear();

    raw.pipelines.set(pipeline("p1", "a1"));
    await reconciler.reconcile(NS);
    assert.deepEqual(secretCalls(), [`get ${TOKENS_SECRET}`, `create ${TOKENS_SECRET}`]);

    client.clear();
    raw.pipelines.remove(NS, "p1");
    await reconciler.reconcile(NS);
    assert.deepEqual(
      secretCalls(),
      [`get ${TOKENS_SECRET}`, `delete ${TOKENS_SECRET}`],
      "a Secret the operator wrote is removed on the next pass, whatever the period",
    );
  });

  it("makes the trust ConfigMap hold the keys again after a key change or an edit of its data, and writes nothing while it holds them", async () => {
    const { raw, client, reconciler, setKeys } = testbed();
    const configMapWrites = () => client.calls.filter((c) => c.kind === "ConfigMap" && c.verb !== "get");
    const held = (): string[] =>
      Object.values((raw.trustConfigMaps.get(NS, "agentry-trust")?.["data"] ?? {}) as Record<string, string>);
    raw.agents.set(agent("a1"));
    await reconciler.reconcile(NS);
    assert.equal(configMapWrites().length, 1, "made");
    client.clear();
    await reconciler.reconcile(NS);
    await reconciler.reconcile(NS);
    assert.deepEqual(configMapWrites(), [], "held: nothing written");

    const k2 = { kid: "k2", pem: "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n" };
    setKeys([{ kid: "k1", pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" }, k2]);
    await reconciler.reconcile(NS);
    assert.equal(configMapWrites().length, 1, "a key added: written");
    assert.ok(
      held().some((v) => v.includes("BBBB")),
      JSON.stringify(held()),
    );
    client.clear();
    await reconciler.reconcile(NS);
    assert.deepEqual(configMapWrites(), [], "held again");

    // Someone edits the data and keeps the annotation: a new version in the cache.
    const cm = raw.trustConfigMaps.get(NS, "agentry-trust")!;
    raw.trustConfigMaps.set({ ...cm, data: { "k1.pem": "tampered" } });
    await reconciler.reconcile(NS);
    assert.equal(configMapWrites().length, 1, "the edit is undone");
    assert.ok(
      held().some((v) => v.includes("BBBB")),
      JSON.stringify(held()),
    );
  });

  it("is woken by an AgentRuntime that starts working in a Workspace, and writes its token; not by an env change", async () => {
    const { raw, client, reconciler, secretCalls } = testbed();
    const woken: string[] = [];
    reconciler.watches.register({ enqueue: (key: string) => woken.push(key) } as unknown as Controller);
    raw.agents.set(agent("a1"));
    assert.deepEqual(woken, [NS]);
    await reconciler.reconcile(NS);
    client.clear();
    woken.length = 0; // (the trust ConfigMap the pass made wakes it too)

    raw.agents.set({
      ...agent("a1", { env: [{ name: "X", value: "2" }] }),
      metadata: { ...agent("a1").metadata, generation: 2 },
    });
    assert.deepEqual(woken, [], "an env change does not concern trust");

    raw.agents.set({
      ...agent("a1", { workspaceRef: { name: "app" } }),
      metadata: { ...agent("a1").metadata, generation: 3 },
    });
    assert.deepEqual(woken, [NS]);
    await reconciler.reconcile(NS);
    assert.deepEqual(secretCalls(), [`get ${TOKENS_SECRET}`, `create ${TOKENS_SECRET}`]);
    const created = client.calls.find((c) => c.kind === "Secret" && c.verb === "create");
    assert.deepEqual(Object.keys((created?.body as KubeObject | undefined)?.["stringData"] ?? {}), [
      "workspace.app",
    ]);
  });
});
