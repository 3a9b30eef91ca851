// The AgentRuntime reconciler and its Pod, on fake informers and a recording client
// (test/harness/agentbed.ts) with the clock injected: a failed Pod recreated after a
// backoff, a changed spec replacing it, suspension, a name someone else holds, orphans.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { NAME_CONFLICT_RECHECK_MS } from "../../../lib/kube/children.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { AgentTestbed, KEY, NS, agentObject } from "../../../test/harness/agentbed.ts";
import { ANNOTATION_AGENT_ID, ANNOTATION_CONTROLLER_ID, LABEL_AGENT } from "./desired.ts";
import { FIRST_STATUS_WAIT_MS } from "./firststatus.ts";
import { STALL_AFTER_MS } from "../../../lib/kube/conditions.ts";

describe("AgentRuntimeReconciler: the Pod's life (fake informers, recording client)", () => {
  let bed: AgentTestbed;
  beforeEach(() => (bed = new AgentTestbed()));

  it("recreates a failed Pod after an exponential backoff measured on the injected clock", async () => {
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    for (const [attempt, delay] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [4, 8_000],
      [5, 8_000], // maxBackoffMs
    ] as const) {
      bed.podIs("Failed");
      bed.client.clear();
      const failed = await bed.reconciler.reconcile(KEY);
      assert.ok(
        bed.writes().includes("delete Pod coder-#1"),
        `attempt ${attempt}: the failed Pod is deleted`,
      );
      assert.equal(failed?.requeueAfterMs, delay, `attempt ${attempt}`);
      assert.match(bed.recorder.events.at(-1)!.message, new RegExp(`recreating it in ${delay / 1000}s`));

      // Before the backoff is over, nothing is created, and the requeue says how long is left.
      bed.clock.advance(delay - 250);
      bed.client.clear();
      const early = await bed.reconciler.reconcile(KEY);
      assert.ok(
        !bed.writes().includes("create Pod coder-#1"),
        `attempt ${attempt}: no Pod before the backoff`,
      );
      assert.equal(early?.requeueAfterMs, 250);

      bed.clock.advance(250);
      bed.client.clear();
      await bed.reconciler.reconcile(KEY);
      assert.ok(bed.writes().includes("create Pod coder-#1"), `attempt ${attempt}: the Pod comes back`);
      assert.equal(bed.recorder.events.at(-1)!.reason, "Recreated");
    }
  });

  it("starts the new Pod beside the old one when the spec changes; the old one serves until it is Ready", async () => {
    await bed.ready();
    const first = bed.pod()!.metadata.name!;
    bed.changeSpec({ image: "registry.example/agent:2" });
    await bed.reconciler.reconcile(KEY);
    const second = bed.pod()!;
    assert.notEqual(second.metadata.name, first, "a new template is a new Pod name");
    const containers = (second["spec"] as { containers: { image: string }[] }).containers;
    assert.equal(containers[0]!.image, "registry.example/agent:2");
    assert.deepEqual(
      bed.pods().map((p) => p.metadata.name),
      [first, second.metadata.name],
      "the old Pod is still there",
    );
    let status = bed.agent().status!;
    assert.equal(
      status.observedGeneration,
      1,
      "a replacement on its way waits to be written (kstatus: in progress)",
    );
    assert.equal(status.phase, "Ready");
    // Past FIRST_STATUS_WAIT_MS, the replacement under way is written.
    bed.clock.advance(FIRST_STATUS_WAIT_MS);
    await bed.reconciler.reconcile(KEY);
    status = bed.agent().status!;
    assert.equal(status.observedGeneration, 2);
    assert.equal(status.phase, "Ready", "the agent still answers");
    assert.equal(status.podName, first, "through the old Pod");
    const cond = (type: string) => bed.agent().status?.conditions?.find((c) => c.type === type);
    assert.equal(cond("Ready")?.status, "True");
    assert.equal(cond("Ready")?.reason, "Replacing");
    assert.equal(cond("Reconciling")?.status, "True", "kstatus: not rolled out yet");

    // The new Pod's trouble is said, and the old Pod keeps serving.
    bed.podIs("Running", false, second);
    bed.informers.pods.set({
      ...bed.pod()!,
      status: {
        phase: "Pending",
        containerStatuses: [
          { name: "agent", ready: false, state: { waiting: { reason: "ImagePullBackOff" } } },
        ],
      },
    });
    await bed.reconciler.reconcile(KEY);
    status = bed.agent().status!;
    assert.equal(status.phase, "Ready");
    assert.equal(status.podName, first);
    assert.equal(cond("Stalled")?.reason, "ImagePullError");
    assert.match(
      status.readinessReason!,
      new RegExp(`Pod ${first} serves; its replacement ${second.metadata.name}`),
    );

    // Ready: the old Pod goes, and the status names the new one.
    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed.pods().map((p) => p.metadata.name),
      [second.metadata.name],
    );
    status = bed.agent().status!;
    assert.equal(status.podName, second.metadata.name);
    assert.equal(cond("Ready")?.reason, "AgentReady");
    assert.equal(cond("Reconciling"), undefined);
    assert.equal(cond("Stalled"), undefined);
    assert.equal(bed.recorder.events.at(-1)!.reason, "Replaced");

    // And a pass more changes nothing.
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), []);
  });

  it("a spec change whose new Pod is Ready soon costs 3 writes: the new Pod, the old Pod's delete, the Ready status", async () => {
    await bed.ready();
    bed.client.clear();
    bed.changeSpec({ env: [{ name: "MODE", value: "fast" }] });
    await bed.reconciler.reconcile(KEY); // the new Pod; the old one serves: progress, not written
    await bed.reconciler.reconcile(KEY); // its create event
    bed.podIs("Pending");
    await bed.reconciler.reconcile(KEY); // scheduled: progress, not written
    bed.podIs("Running");
    await bed.reconciler.reconcile(KEY); // running, not ready yet: progress, not written
    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), [
      "create Pod coder-#2",
      "delete Pod coder-#1",
      "apply AgentRuntime/status coder",
    ]);
    assert.equal(bed.agent().status?.phase, "Ready");
    assert.equal(bed.agent().status?.observedGeneration, 2);
  });

  it("a spec change whose new Pod takes longer costs 4: the replacing status is written past FIRST_STATUS_WAIT_MS", async () => {
    await bed.ready();
    bed.client.clear();
    bed.changeSpec({ env: [{ name: "MODE", value: "slow" }] });
    const first = await bed.reconciler.reconcile(KEY);
    assert.ok(
      first?.requeueAfterMs !== undefined && first.requeueAfterMs <= FIRST_STATUS_WAIT_MS,
      "comes back when the wait is over",
    );
    bed.podIs("Pending");
    bed.clock.advance(FIRST_STATUS_WAIT_MS);
    const written = await bed.reconciler.reconcile(KEY);
    assert.ok(
      written?.requeueAfterMs !== undefined && written.requeueAfterMs <= STALL_AFTER_MS,
      "comes back by the stall bound (the new Pod may never start)",
    );
    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), [
      "create Pod coder-#2",
      "apply AgentRuntime/status coder",
      "delete Pod coder-#1",
      "apply AgentRuntime/status coder",
    ]);
  });

  const storage = { storage: { size: "1Gi", mountPath: "/data" } };

  it("with the agent's own claim, the old Pod goes first, then the new one comes: 4 writes", async () => {
    await bed.ready(storage);
    bed.client.clear();
    bed.changeSpec({ ...storage, image: "registry.example/agent:2" });
    await bed.reconciler.reconcile(KEY); // deletes the Pod, says it is being replaced
    assert.deepEqual(bed.pods(), [], "no new Pod beside the old one");
    assert.equal(bed.recorder.events.at(-1)!.reason, "Replacing");
    assert.equal(bed.agent().status?.phase, "Starting");
    await bed.reconciler.reconcile(KEY); // its delete event: the new Pod
    bed.podIs("Pending");
    await bed.reconciler.reconcile(KEY);
    bed.podIs("Running", true);
    await bed.reconciler.reconcile(KEY);
    const [replacing, ready] = ["apply AgentRuntime/status coder", "apply AgentRuntime/status coder"];
    assert.deepEqual(bed.writes(), ["delete Pod coder-#1", replacing, "create Pod coder-#2", ready]);
    assert.equal(bed.agent().status?.phase, "Ready");
  });

  it("writes a replacement's progress once it has waited FIRST_STATUS_WAIT_MS", async () => {
    await bed.ready(storage);
    bed.changeSpec({ ...storage, image: "registry.example/agent:2" });
    await bed.reconciler.reconcile(KEY);
    await bed.reconciler.reconcile(KEY);
    bed.podIs("Pending");
    bed.client.clear();
    const held = await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), [], "progress is held");
    assert.ok(held?.requeueAfterMs !== undefined && held.requeueAfterMs <= FIRST_STATUS_WAIT_MS);
    bed.clock.advance(FIRST_STATUS_WAIT_MS);
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(bed.writes(), ["apply AgentRuntime/status coder"], "written after the wait");
    assert.equal(bed.agent().status?.phase, "Pending");
  });

  it("keeps a Pod named before Pods were named by their template, while its template holds", async () => {
    await bed.ready();
    const pod = bed.pod()!;
    bed.informers.pods.remove(NS, pod.metadata.name!);
    bed.informers.pods.set({ ...pod, metadata: { ...pod.metadata, name: "coder" } });
    bed.client.clear();
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed.writes(),
      ["apply AgentRuntime/status coder"],
      "the Pod of the old name is the current one",
    );
    assert.equal(bed.agent().status?.podName, "coder");
  });

  it("removes the Pod while suspended and keeps the Service", async () => {
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    bed.client.clear();
    bed.informers.agents.set(agentObject({ suspended: true }));
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed.writes().filter((w) => w.startsWith("delete")),
      ["delete Pod coder-#1"],
    );
    assert.ok(bed.informers.services.get(NS, "coder"), "the Service stays");
    assert.equal(bed.recorder.events.at(-1)!.reason, "Suspended");
    assert.equal(bed.agent().status?.phase, "Suspended");
  });

  it("leaves a Pod of the same name that is someone else's, says so and looks again later", async () => {
    // The name the Pod would have (a trial run on a bed of its own).
    const trial = new AgentTestbed();
    trial.informers.agents.set(agentObject());
    await trial.reconciler.reconcile(KEY);
    const name = trial.pod()!.metadata.name!;
    bed.theirs("pods", "Pod", name);
    bed.informers.agents.set(agentObject());
    const result = await bed.reconciler.reconcile(KEY);
    assert.ok(!bed.client.writes().some((w) => w.kind === "Pod"), "someone else's Pod is never deleted");
    assert.equal(result?.requeueAfterMs, NAME_CONFLICT_RECHECK_MS);
    assert.ok(bed.recorder.reasons().includes("NameConflict"));
    const stalled = bed.agent().status?.conditions?.find((c) => c.type === "Stalled");
    assert.equal(stalled?.status, "True");
  });

  it("makes no Pod behind someone else's Service of its name", async () => {
    bed.theirs("services", "Service");
    bed.informers.agents.set(agentObject());
    const result = await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed.writes().filter((w) => w.includes("Pod") || w.includes("Service")),
      [],
      "neither their Service nor a Pod of ours",
    );
    assert.equal(bed.pod(), undefined);
    assert.equal(result?.requeueAfterMs, NAME_CONFLICT_RECHECK_MS);
    assert.ok(bed.recorder.reasons().includes("NameConflict"));
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
    bed.informers.services.set(leftover("coder-old", "agentry"));
    bed.informers.services.set(leftover("coder-other-install", "someone-else"));
    bed.informers.agents.set(agentObject());
    await bed.reconciler.reconcile(KEY);
    assert.ok(bed.writes().includes("delete Service coder-old"));
    assert.ok(!bed.writes().includes("delete Service coder-other-install"));

    // And once the AgentRuntime is gone, its own children are orphans too.
    bed.client.clear();
    bed.informers.agents.remove(NS, "coder");
    await bed.reconciler.reconcile(KEY);
    assert.deepEqual(
      bed
        .writes()
        .filter((w) => w.startsWith("delete"))
        .sort(),
      ["delete NetworkPolicy coder", "delete Pod coder-#1", "delete Service coder"],
    );
  });
});
