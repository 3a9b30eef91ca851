// computeAgentStatus: what the status says for what the controller observed (pure).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agent } from "./fixtures.ts";
import { computeAgentStatus, type AgentObservation, type PodView } from "./status.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { podView } from "../../../lib/kube/projections.ts";

const base: AgentObservation = {
  podName: "coder",
  serviceName: "coder",
  serviceExists: true,
  endpoint: "http://coder.team.svc:8080",
  templateHash: "h",
};
const pod = (status: PodView["status"], extra: Partial<PodView> = {}): PodView => ({
  metadata: { name: "coder" },
  ...extra,
  status,
});
/** A Pod the scheduler cannot place. */
const unschedulablePod = (condition: { message?: string; lastTransitionTime?: string }): PodView =>
  pod({
    phase: "Pending",
    conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", ...condition }],
  });
const now = new Date("2026-11-23T10:00:00Z");

describe("computeAgentStatus", () => {
  const cases: [string, Partial<AgentObservation>, Record<string, unknown>, string, RegExp][] = [
    ["no pod yet", {}, {}, "Pending", /creating Pod coder/],
    ["suspended", {}, { suspended: true }, "Suspended", /suspended/],
    ["workspace missing", { workspaceProblem: "Workspace ws does not exist" }, {}, "Pending", /Workspace ws/],
    [
      "unschedulable",
      {
        pod: unschedulablePod({ message: "0/3 nodes: Insufficient cpu" }),
      },
      {},
      "Pending",
      /no node can run the agent: 0\/3 nodes: Insufficient cpu/,
    ],
    [
      "image pull",
      {
        pod: pod({
          phase: "Pending",
          containerStatuses: [
            { name: "agent", state: { waiting: { reason: "ImagePullBackOff", message: "not found" } } },
          ],
        }),
      },
      {},
      "Error",
      /cannot pull image registry\.example\/agent:1 \(ImagePullBackOff\)/,
    ],
    [
      "crash loop",
      {
        pod: pod({
          phase: "Running",
          containerStatuses: [
            {
              name: "agent",
              restartCount: 5,
              state: { waiting: { reason: "CrashLoopBackOff" } },
              lastState: { terminated: { exitCode: 2, message: "bad config" } },
            },
          ],
        }),
      },
      {},
      "Error",
      /keeps crashing \(last exit code 2: bad config\)/,
    ],
    [
      "running, not ready",
      {
        pod: pod({
          phase: "Running",
          conditions: [{ type: "Ready", status: "False", message: "probe failed" }],
        }),
      },
      {},
      "Starting",
      /not ready yet: probe failed/,
    ],
    [
      "running, not ready, the agent reports an error",
      {
        pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }),
        agentReadiness: { status: "error", reason: "provider openai needs an API key" },
      },
      {},
      "Error",
      /^the agent reports an error: provider openai needs an API key \(GET \/readyz\)/,
    ],
    [
      "running, not ready, the agent is starting",
      {
        pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }),
        agentReadiness: { status: "starting", reason: "waiting for workspace ws on its sandbox" },
      },
      {},
      "Starting",
      /^the agent is starting: waiting for workspace ws on its sandbox \(GET \/readyz\)$/,
    ],
    [
      "ready, whatever the agent said before",
      {
        pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }),
        agentReadiness: { status: "error", reason: "stale" },
      },
      {},
      "Ready",
      /answers at/,
    ],
    [
      "ready",
      { pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }) },
      {},
      "Ready",
      /answers at/,
    ],
    ["failed", { pod: pod({ phase: "Failed", message: "OOMKilled" }) }, {}, "Error", /OOMKilled; recreating/],
    ["write error", { reconcileError: "could not update: forbidden" }, {}, "Error", /forbidden/],
    [
      "a name held by someone else's object, even while suspended",
      { nameConflict: "Service coder already exists and is not managed by AgentRuntime coder" },
      { suspended: true },
      "Error",
      /^Service coder already exists/,
    ],
  ];
  // kstatus's reading of each case: Current (Ready), InProgress (Reconciling) or Failed (Stalled).
  const progress: Record<string, "Current" | "Reconciling" | "Stalled"> = {
    "no pod yet": "Reconciling",
    suspended: "Current",
    "workspace missing": "Reconciling",
    unschedulable: "Reconciling",
    "image pull": "Stalled",
    "crash loop": "Stalled",
    "running, not ready": "Reconciling",
    "running, not ready, the agent reports an error": "Stalled",
    "running, not ready, the agent is starting": "Reconciling",
    "ready, whatever the agent said before": "Current",
    ready: "Current",
    failed: "Reconciling",
    "write error": "Reconciling",
    "a name held by someone else's object, even while suspended": "Stalled",
  };
  for (const [name, observed, spec, phase, reason] of cases) {
    it(name, () => {
      const status = computeAgentStatus(agent(spec), { ...base, ...observed }, now);
      assert.equal(status.phase, phase);
      assert.match(status.readinessReason ?? "", reason);
      const [ready, abnormal, ...more] = status.conditions ?? [];
      assert.equal(ready?.type, "Ready");
      const want = progress[name];
      assert.ok(want, `kstatus expectation for "${name}"`);
      assert.equal(ready?.status, want === "Current" ? "True" : "False");
      assert.equal(
        abnormal?.type,
        want === "Current" ? undefined : want,
        "Reconciling or Stalled, never both",
      );
      assert.equal(abnormal?.status, want === "Current" ? undefined : "True");
      assert.equal(abnormal?.reason, want === "Current" ? undefined : ready?.reason);
      assert.deepEqual(more, []);
      assert.equal(ready?.observedGeneration, 3);
      assert.equal(status.observedGeneration, 3);
      if (observed.nameConflict) assert.equal(ready?.reason, "NameConflict");
    });
  }

  // The operator caches Pods as podView projects them: every case reads the same from it.
  for (const [name, observed, spec] of cases.filter(([, o]) => o.pod)) {
    it(`${name}: the same status from the cached projection of the Pod`, () => {
      const full = {
        apiVersion: "v1",
        kind: "Pod",
        ...structuredClone(observed.pod!),
        metadata: {
          name: "coder",
          namespace: "team",
          annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}".repeat(500) },
          managedFields: [{ manager: "kubelet" }],
        },
        spec: { nodeName: "node-1", containers: [{ name: "agent", image: "registry.example/agent:1" }] },
      } as unknown as KubeObject;
      const st = full["status"] as { hostIP?: string; containerStatuses?: Record<string, unknown>[] };
      st.hostIP = "10.0.0.1";
      for (const c of st.containerStatuses ?? [])
        Object.assign(c, { image: "x", imageID: "sha256:1", started: true });
      const projected = podView(structuredClone(full)) as unknown as PodView;
      assert.ok(JSON.stringify(projected).length < JSON.stringify(full).length / 2);
      assert.deepEqual(
        computeAgentStatus(agent(spec), { ...base, ...observed, pod: projected }, now),
        computeAgentStatus(agent(spec), { ...base, ...observed, pod: full }, now),
      );
    });
  }

  it("a missing workspace or an unschedulable Pod stalls only past the bound", () => {
    const created = agent({ workspaceRef: { name: "ws" } });
    created.metadata.creationTimestamp = new Date(now.getTime() - 60_000).toISOString();
    const missing = { ...base, workspaceProblem: "Workspace ws does not exist", workspaceMissing: true };
    const type = (o: Partial<AgentObservation>) =>
      computeAgentStatus(created, { ...base, ...o }, now).conditions?.[1]?.type;
    assert.equal(type({ ...missing, stallAfterMs: 120_000 }), "Reconciling");
    assert.equal(type({ ...missing, stallAfterMs: 30_000 }), "Stalled");
    assert.equal(
      type({ workspaceProblem: "Workspace ws is not placed yet", stallAfterMs: 30_000 }),
      "Reconciling",
      "a workspace that exists is being placed: no stall however long",
    );
    const unschedulable = (since: string) => ({
      pod: unschedulablePod({ lastTransitionTime: since }),
      stallAfterMs: 300_000,
    });
    assert.equal(type(unschedulable("2026-11-23T09:58:00Z")), "Reconciling");
    assert.equal(type(unschedulable("2026-11-23T09:50:00Z")), "Stalled");
  });

  describe("while the Pod of the earlier spec serves (serving)", () => {
    const served = { ...base, podName: "coder-new", serving: "coder-old" };
    const conditions = (o: Partial<AgentObservation>, spec: Record<string, unknown> = {}) => {
      const st = computeAgentStatus(agent(spec), { ...served, ...o }, now);
      return { st, c: Object.fromEntries((st.conditions ?? []).map((c) => [c.type, c])) };
    };

    it("a new Pod on its way: Ready through the old one, Reconciling, one message whatever its progress", () => {
      const messages = new Set<string>();
      for (const o of [
        {},
        { pod: pod({ phase: "Pending" }) },
        { pod: pod({ phase: "Pending" }, { spec: { nodeName: "node-1" } }) },
        { pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "False" }] }) },
      ] as Partial<AgentObservation>[]) {
        const { st, c } = conditions(o);
        assert.equal(st.phase, "Ready");
        assert.equal(st.podName, "coder-old", "the serving Pod");
        assert.equal(c["Ready"]?.status, "True");
        assert.equal(c["Ready"]?.reason, "Replacing");
        assert.equal(c["Reconciling"]?.status, "True");
        assert.equal(c["Stalled"], undefined);
        assert.equal(st.restartCount, undefined);
        messages.add(st.readinessReason!);
      }
      assert.deepEqual(
        [...messages],
        ["Pod coder-old serves while its replacement coder-new starts (the spec changed)"],
      );
    });

    it("a new Pod in trouble: still Ready through the old one, Stalled with the new Pod's reason", () => {
      const { st, c } = conditions({
        pod: pod({
          phase: "Pending",
          containerStatuses: [
            { name: "agent", state: { waiting: { reason: "ErrImagePull", message: "nope" } } },
          ],
        }),
      });
      assert.equal(st.phase, "Ready");
      assert.equal(c["Ready"]?.status, "True");
      assert.equal(c["Stalled"]?.reason, "ImagePullError");
      assert.match(
        st.readinessReason!,
        /^Pod coder-old serves; its replacement coder-new: cannot pull image/,
      );
    });

    it("what concerns the AgentRuntime itself is not hidden by a serving Pod", () => {
      assert.equal(conditions({}, { suspended: true }).st.phase, "Suspended");
      assert.equal(conditions({ nameConflict: "Service coder already exists" }).st.phase, "Error");
      assert.equal(conditions({ reconcileError: "could not update child objects: boom" }).st.phase, "Error");
      assert.equal(conditions({ workspaceProblem: "Workspace ws does not exist" }).st.phase, "Pending");
    });
  });

  it("keeps lastTransitionTime while the condition holds, so recomputing writes nothing new", () => {
    const observed = {
      ...base,
      pod: pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] }),
    };
    const first = computeAgentStatus(agent(), observed, now);
    const later = computeAgentStatus(agent({}, first), observed, new Date("2026-11-23T11:00:00Z"));
    assert.deepEqual(later, first);
  });
});
