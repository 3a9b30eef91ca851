// The AgentRuntime reconciler on fake informers and a recording client (test/harness/
// agentbed.ts), with the clock injected: which writes and events each situation causes,
// and that an unchanged world causes none. Its Pod's life (backoff, replacement,
// suspension, conflicts, orphans) is in reconciler.pods.test.ts. The same controller
// against the real control plane is tested in test/operator/.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { AgentTestbed, KEY, NS, agentObject, short } from "../../../test/harness/agentbed.ts";

describe("AgentRuntimeReconciler (fake informers, recording client)", () => {
  let bed: AgentTestbed;
  beforeEach(() => (bed = new AgentTestbed()));

  it("creates the Service, the NetworkPolicy and the Pod with no Event, and one status: Ready once the Pod is", async () => {
    bed.informers.agents.set(agentObject());
    const first = await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes().sort(), [
      "apply NetworkPolicy coder",
      "apply Service coder",
      "create Pod coder-#1",
    ]);
    assert.deepEqual(bed.recorder.reasons(), [], "the happy path is told by the status, not by Events");
    assert.ok(first && first.requeueAfterMs! <= 5_000, "a backstop requeue for the deferred status");
    assert.equal(bed.agent().status, undefined, "no status on the first pass");

    // The children's events: the Pod is on its way, nothing worth a status yet.
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    bed.podIs("Pending");
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);

    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(bed.agent().status?.phase, "Ready");

    // Nothing changed: nothing written.
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);
  });

  it("keeps an AgentRuntime's desired objects while it is in motion, not once it has settled or gone", async () => {
    const memo = () => (bed.reconciler as any).desiredCache.size as number;
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    bed.podIs("Running", false);
    await bed.reconciler.reconcile(KEY);
    assert.equal(memo(), 1, "kept while the Pod starts");
    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    assert.equal(bed.agent().status?.phase, "Ready");
    assert.equal(memo(), 0, "settled with the pass that writes Ready (its own write brings no pass)");
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), [], "a pass after it computes the same objects: nothing written");
    assert.equal(memo(), 0);

    // A spec change sets it in motion again; a delete drops it.
    bed.informers.agents.set({ ...agentObject({ image: "agent:v2" }), status: bed.agent().status });
    await bed.reconciler.reconcile(KEY);
    assert.equal(memo(), 1);
    bed.informers.agents.remove(NS, "coder");
    await bed.reconciler.reconcile(KEY);
    assert.equal(memo(), 0);
  });

  it("writes the progress of a new AgentRuntime whose Pod is not Ready within 5 s", async () => {
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    bed.clock.advance(4_000);
    bed.client.clear();
    const early = await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);
    assert.equal(early?.requeueAfterMs, 1_000, "comes back when the 5 s are up");
    bed.clock.advance(1_000);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(bed.agent().status?.phase, "Pending");
  });

  it("a pass that runs before the watch events of its writes writes nothing, and reads nothing", async () => {
    bed.client.hold();
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    assert.equal(bed.client.writes().length, 3);
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(short(bed.client.calls), [], "no second create, no read to find the first");
    bed.client.deliver();

    // The same for a status: written once, however often the AgentRuntime comes back before its event.
    bed.podIs("Running", true);
    bed.client.hold();
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), ["apply AgentRuntime/status coder"]);
    bed.client.deliver();
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);

    // And for a delete: suspended, the Pod is deleted once.
    bed.informers.agents.set({ ...agentObject({ suspended: true }), status: bed.agent().status });
    bed.client.hold();
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed.writes().filter((w) => w.startsWith("delete")),
      ["delete Pod coder-#1"],
    );
    bed.client.deliver();
  });

  it("reports Running and then Ready as the Pod gets there, one status write each", async () => {
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    bed.podIs("Running", true);
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), ["apply AgentRuntime/status coder"]);
    assert.equal(bed.agent().status?.phase, "Ready");
    assert.equal(bed.agent().status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);
  });

  it("reports a failed write as an error and retries the next pass", async () => {
    bed.informers.agents.set(agentObject());
    bed.client.failNext("create", "Pod", new Error("the apiserver is away"));
    await assert.rejects(
      bed.reconciler.reconcile(KEY),
      /could not update child objects: the apiserver is away/,
    );
    const ready = bed.agent().status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /apiserver is away/);
    // Only the writes that succeeded are counted.
    const counted = await bed.metrics.registry.getSingleMetric("agentry_writes_total")?.get();
    const byKind = Object.fromEntries(
      (counted?.values ?? []).map((v) => [`${v.labels.kind}/${v.labels.verb}`, v.value]),
    );
    assert.deepEqual(byKind, { "Service/apply": 1, "NetworkPolicy/apply": 1, "AgentRuntime/status": 1 });
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.ok(bed.writes().includes("create Pod coder-#1"));
  });

  it("leaves an AgentRuntime whose spec does not parse alone, and reports it once", async () => {
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    bed.client.clear();
    // Past the webhook (or stored before a schema change): a port out of range.
    bed.informers.agents.set({ ...agentObject({ port: 70_000 }), status: bed.agent().status });
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), [], "neither its children nor its status are touched");
    assert.ok(bed.pod(), "its Pod is not taken for an orphan");
    assert.equal(bed.invalid.length, 1, bed.invalid.join("\n"));
    assert.match(bed.invalid[0]!, /spec\.port/);
  });

  it("never changes an object its informers hand out", async () => {
    // FakeInformer freezes what it stores: a bed.reconciler that wrote into the cache would throw.
    bed.informers.agents.set(agentObject({ port: undefined }));
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    assert.equal((bed.informers.agents.get(NS, "coder")!["spec"] as { port?: number }).port, undefined);
  });
});
