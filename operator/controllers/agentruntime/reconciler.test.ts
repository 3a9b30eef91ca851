// The AgentRuntime reconciler on fake informers and a recording client (test/harness/
// fakekube.ts), with the clock injected: which writes and events each situation causes,
// and that an unchanged world causes none. The same controller against the real control
// plane is tested in test/operator/.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { NAME_CONFLICT_RECHECK_MS } from "../../../lib/kube/children.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { Metrics } from "../../../lib/kube/metrics.ts";
import { TypedInformer } from "../../../lib/kube/typed.ts";
import { silentLogger } from "../../../lib/log.ts";
import {
  FakeClock,
  FakeInformer,
  RecordingClient,
  RecordingRecorder,
  type Call,
} from "../../../test/harness/fakekube.ts";
import { ANNOTATION_AGENT_ID, ANNOTATION_CONTROLLER_ID, LABEL_AGENT } from "./desired.ts";
import { AgentRuntimeReconciler, type AgentInformers } from "./reconciler.ts";

const NS = "team";
const KEY = `${NS}/coder`;

function agentObject(spec: Record<string, unknown> = {}, uid = "uid-agent"): KubeObject {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "AgentRuntime",
    metadata: { name: "coder", namespace: NS, uid, generation: 1 },
    spec: { image: "registry.example/agent:1", ...spec },
  };
}

const short = (calls: Call[]) =>
  calls.map((c) => `${c.verb} ${c.kind}${c.subresource ? `/${c.subresource}` : ""} ${c.name ?? ""}`.trim());

describe("AgentRuntimeReconciler (fake informers, recording client)", () => {
  let informers: { [K in keyof AgentInformers]: FakeInformer };
  let client: RecordingClient;
  let recorder: RecordingRecorder;
  let clock: FakeClock;
  let metrics: Metrics;
  let reconciler: AgentRuntimeReconciler;
  let invalid: string[];

  const agent = () => informers.agents.get(NS, "coder") as unknown as AgentRuntime;
  const pod = () => informers.pods.get(NS, "coder");
  /** The kubelet's part: the Pod reaches `phase` (Ready when Running and ready). */
  const podIs = (phase: string, ready = false) => {
    const p = pod()!;
    informers.pods.set({
      ...p,
      status: {
        phase,
        conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
        containerStatuses: [{ name: "agent", ready, restartCount: 0, state: {} }],
      },
    });
  };
  const writes = () => short(client.writes());

  beforeEach(() => {
    informers = {
      agents: new FakeInformer("AgentRuntime"),
      pods: new FakeInformer("Pod"),
      services: new FakeInformer("Service"),
      networkPolicies: new FakeInformer("NetworkPolicy"),
      claims: new FakeInformer("PersistentVolumeClaim"),
      workspaces: new FakeInformer("Workspace"),
      fleets: new FakeInformer("SandboxFleet"),
    };
    client = new RecordingClient(Object.values(informers));
    recorder = new RecordingRecorder();
    clock = new FakeClock();
    metrics = new Metrics(false);
    invalid = [];
    reconciler = new AgentRuntimeReconciler({
      client,
      // The operator's typed view over the raw cache, as operator/main.ts wires it.
      informers: {
        ...informers,
        agents: new TypedInformer("AgentRuntime", informers.agents, (o, problem) => invalid.push(problem)),
        workspaces: new TypedInformer("Workspace", informers.workspaces, () => undefined),
        fleets: new TypedInformer("SandboxFleet", informers.fleets, () => undefined),
      },
      recorder,
      metrics,
      log: silentLogger(),
      context: {
        controllerId: "agentry",
        gateway: { namespace: "agentry-system", podLabels: { app: "gateway" } },
      },
      now: clock.now,
      maxBackoffMs: 8_000,
    });
  });

  it("creates the Service, the NetworkPolicy and the Pod with no Event, and one status: Ready once the Pod is", async () => {
    informers.agents.set(agentObject());
    const first = await reconciler.reconcile(KEY);
    assert.deepEqual(writes().sort(), [
      "apply NetworkPolicy coder",
      "apply Service coder",
      "create Pod coder",
    ]);
    assert.deepEqual(recorder.reasons(), [], "the happy path is told by the status, not by Events");
    assert.ok(first && first.requeueAfterMs! <= 5_000, "a backstop requeue for the deferred status");
    assert.equal(agent().status, undefined, "no status on the first pass");

    // The children's events: the Pod is on its way, nothing worth a status yet.
    client.clear();
    await reconciler.reconcile(KEY);
    podIs("Pending");
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), []);

    podIs("Running", true);
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(agent().status?.phase, "Ready");

    // Nothing changed: nothing written.
    client.clear();
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), []);
  });

  it("writes the progress of a new AgentRuntime whose Pod is not Ready within 5 s", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    clock.advance(4_000);
    client.clear();
    const early = await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), []);
    assert.equal(early?.requeueAfterMs, 1_000, "comes back when the 5 s are up");
    clock.advance(1_000);
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(agent().status?.phase, "Pending");
  });

  it("a pass that runs before the watch events of its writes writes nothing, and reads nothing", async () => {
    client.hold();
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    assert.equal(client.writes().length, 3);
    client.clear();
    await reconciler.reconcile(KEY);
    assert.deepEqual(short(client.calls), [], "no second create, no read to find the first");
    client.deliver();

    // The same for a status: written once, however often the AgentRuntime comes back before its event.
    podIs("Running", true);
    client.hold();
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), ["apply AgentRuntime/status coder"]);
    client.deliver();
    client.clear();
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), []);

    // And for a delete: suspended, the Pod is deleted once.
    informers.agents.set({ ...agentObject({ suspended: true }), status: agent().status });
    client.hold();
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    assert.deepEqual(
      writes().filter((w) => w.startsWith("delete")),
      ["delete Pod coder"],
    );
    client.deliver();
  });

  it("reports Running and then Ready as the Pod gets there, one status write each", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    podIs("Running", true);
    client.clear();
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(agent().status?.phase, "Ready");
    assert.equal(agent().status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
    client.clear();
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), []);
  });

  it("recreates a failed Pod after an exponential backoff measured on the injected clock", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    for (const [attempt, delay] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [4, 8_000],
      [5, 8_000], // maxBackoffMs
    ] as const) {
      podIs("Failed");
      client.clear();
      const failed = await reconciler.reconcile(KEY);
      assert.ok(writes().includes("delete Pod coder"), `attempt ${attempt}: the failed Pod is deleted`);
      assert.equal(failed?.requeueAfterMs, delay, `attempt ${attempt}`);
      assert.match(recorder.events.at(-1)!.message, new RegExp(`recreating it in ${delay / 1000}s`));

      // Before the backoff is over, nothing is created, and the requeue says how long is left.
      clock.advance(delay - 250);
      client.clear();
      const early = await reconciler.reconcile(KEY);
      assert.ok(!writes().includes("create Pod coder"), `attempt ${attempt}: no Pod before the backoff`);
      assert.equal(early?.requeueAfterMs, 250);

      clock.advance(250);
      client.clear();
      await reconciler.reconcile(KEY);
      assert.ok(writes().includes("create Pod coder"), `attempt ${attempt}: the Pod comes back`);
      assert.equal(recorder.events.at(-1)!.reason, "Recreated");
    }
  });

  it("replaces the Pod when the spec changes, and only then", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    podIs("Running", true);
    await reconciler.reconcile(KEY);
    client.clear();
    informers.agents.set({ ...agentObject({ image: "registry.example/agent:2" }), status: agent().status });
    await reconciler.reconcile(KEY);
    assert.ok(writes().includes("delete Pod coder"));
    assert.equal(recorder.events.at(-1)!.reason, "Replacing");
    // The next pass (the Pod's delete event) creates it from the new spec.
    client.clear();
    await reconciler.reconcile(KEY);
    const created = client.writes().find((c) => c.kind === "Pod")?.body as KubeObject;
    const containers = (created["spec"] as { containers: { image: string }[] }).containers;
    assert.equal(containers[0]!.image, "registry.example/agent:2");
  });

  it("removes the Pod while suspended and keeps the Service", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    client.clear();
    informers.agents.set(agentObject({ suspended: true }));
    await reconciler.reconcile(KEY);
    assert.deepEqual(
      writes().filter((w) => w.startsWith("delete")),
      ["delete Pod coder"],
    );
    assert.ok(informers.services.get(NS, "coder"), "the Service stays");
    assert.equal(recorder.events.at(-1)!.reason, "Suspended");
    assert.equal(agent().status?.phase, "Suspended");
  });

  it("leaves a Pod of the same name that is someone else's, says so and looks again later", async () => {
    informers.pods.set({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "coder", namespace: NS, uid: "uid-theirs", labels: { app: "theirs" } },
    });
    informers.agents.set(agentObject());
    const result = await reconciler.reconcile(KEY);
    assert.ok(!writes().includes("delete Pod coder"), "someone else's Pod is never deleted");
    assert.equal(result?.requeueAfterMs, NAME_CONFLICT_RECHECK_MS);
    assert.ok(recorder.reasons().includes("NameConflict"));
    const stalled = agent().status?.conditions?.find((c) => c.type === "Stalled");
    assert.equal(stalled?.status, "True");
  });

  it("makes no Pod behind someone else's Service of its name", async () => {
    informers.services.set({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "coder", namespace: NS, uid: "uid-theirs", labels: { app: "theirs" } },
    });
    informers.agents.set(agentObject());
    const result = await reconciler.reconcile(KEY);
    assert.deepEqual(
      writes().filter((w) => w.includes("Pod") || w.includes("Service")),
      [],
      "neither their Service nor a Pod of ours",
    );
    assert.equal(pod(), undefined);
    assert.equal(result?.requeueAfterMs, NAME_CONFLICT_RECHECK_MS);
    assert.ok(recorder.reasons().includes("NameConflict"));
  });

  it("deletes children an earlier AgentRuntime of the same name left, never anyone else's", async () => {
    const leftover = (name: string, controllerId: string): KubeObject => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name,
        namespace: NS,
        uid: `uid-${name}`,
        labels: { [LABEL_AGENT]: "coder" },
        annotations: { [ANNOTATION_AGENT_ID]: "uid-old", [ANNOTATION_CONTROLLER_ID]: controllerId },
      },
    });
    informers.services.set(leftover("coder-old", "agentry"));
    informers.services.set(leftover("coder-other-install", "someone-else"));
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    assert.ok(writes().includes("delete Service coder-old"));
    assert.ok(!writes().includes("delete Service coder-other-install"));

    // And once the AgentRuntime is gone, its own children are orphans too.
    client.clear();
    informers.agents.remove(NS, "coder");
    await reconciler.reconcile(KEY);
    assert.deepEqual(
      writes()
        .filter((w) => w.startsWith("delete"))
        .sort(),
      ["delete NetworkPolicy coder", "delete Pod coder", "delete Service coder"],
    );
  });

  it("reports a failed write as an error and retries the next pass", async () => {
    informers.agents.set(agentObject());
    client.failNext("create", "Pod", new Error("the apiserver is away"));
    await assert.rejects(reconciler.reconcile(KEY), /could not update child objects: the apiserver is away/);
    const ready = agent().status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /apiserver is away/);
    // Only the writes that succeeded are counted.
    const counted = await metrics.registry.getSingleMetric("agentry_writes_total")?.get();
    const byKind = Object.fromEntries(
      (counted?.values ?? []).map((v) => [`${v.labels.kind}/${v.labels.verb}`, v.value]),
    );
    assert.deepEqual(byKind, { "Service/apply": 1, "NetworkPolicy/apply": 1, "AgentRuntime/status": 1 });
    client.clear();
    await reconciler.reconcile(KEY);
    assert.ok(writes().includes("create Pod coder"));
  });

  it("leaves an AgentRuntime whose spec does not parse alone, and reports it once", async () => {
    informers.agents.set(agentObject());
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    client.clear();
    // Past the webhook (or stored before a schema change): a port out of range.
    informers.agents.set({ ...agentObject({ port: 70_000 }), status: agent().status });
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    assert.deepEqual(writes(), [], "neither its children nor its status are touched");
    assert.ok(informers.pods.get(NS, "coder"), "its Pod is not taken for an orphan");
    assert.equal(invalid.length, 1, invalid.join("\n"));
    assert.match(invalid[0]!, /spec\.port/);
  });

  it("never changes an object its informers hand out", async () => {
    // FakeInformer freezes what it stores: a reconciler that wrote into the cache would throw.
    informers.agents.set(agentObject({ port: undefined }));
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    assert.equal((informers.agents.get(NS, "coder")!["spec"] as { port?: number }).port, undefined);
  });
});
