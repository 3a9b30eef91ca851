import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import { ANNOTATION_SPEC_HASH, LABEL_TEMPLATE_HASH, desiredAgent, type AgentContext } from "./desired.ts";
import { computeAgentStatus, type AgentObservation, type PodView } from "./status.ts";
import { staleChild } from "./reconciler.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { podView } from "../../../lib/kube/projections.ts";
import { egressAllowed, type Destination } from "../../../test/harness/netpol.ts";

type Obj = Record<string, any>;

function agent(spec: Record<string, unknown> = {}, status?: AgentRuntime["status"]): AgentRuntime {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "AgentRuntime",
    metadata: { name: "coder", namespace: "team", uid: "uid-1", generation: 3 },
    spec: specSchemas.AgentRuntime.parse({ image: "registry.example/agent:1", ...spec }),
    ...(status ? { status } : {}),
  };
}

const ctx: AgentContext = {
  controllerId: "agentry",
  gateway: { namespace: "agentry-system", podLabels: { "app.kubernetes.io/name": "agentry-gateway" } },
};

describe("desiredAgent", () => {
  it("builds a restricted Pod and a Service owned by the AgentRuntime", () => {
    const d = desiredAgent(agent(), ctx);
    const pod = d.pod as Obj;
    assert.equal(pod.metadata.name, "coder");
    assert.equal(pod.metadata.ownerReferences[0].uid, "uid-1");
    assert.equal(pod.metadata.ownerReferences[0].controller, true);
    assert.equal(pod.metadata.annotations["agentry.dev/agent-id"], "uid-1");
    assert.equal(pod.metadata.labels[LABEL_TEMPLATE_HASH], d.templateHash);
    const sc = pod.spec.securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.seccompProfile.type, "RuntimeDefault");
    const c = pod.spec.containers[0];
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.equal(d.service.metadata.annotations?.[ANNOTATION_SPEC_HASH]?.length, 10);
    assert.equal(d.endpoint, "http://coder.team.svc:8080");
  });

  it("is deterministic, and any spec change changes the template hash", () => {
    const a = desiredAgent(agent(), ctx);
    assert.deepEqual(desiredAgent(agent(), ctx), a);
    for (const change of [
      { image: "registry.example/agent:2" },
      { port: 9000 },
      { env: [{ name: "X", value: "1" }] },
      { resources: { limits: { cpu: "1" } } },
      { runtimeClassName: "gvisor" },
    ]) {
      assert.notEqual(desiredAgent(agent(change), ctx).templateHash, a.templateHash, JSON.stringify(change));
    }
  });

  it("passes model credentials by Secret reference only", () => {
    const d = desiredAgent(
      agent({
        model: { provider: "openai", model: "m", credentialsSecretRef: { name: "creds", key: "token" } },
      }),
      ctx,
    );
    const env = (d.pod as Obj).spec.containers[0].env as Obj[];
    const key = env.find((e) => e.name === "AGENTRY_MODEL_API_KEY");
    assert.deepEqual(key?.valueFrom, { secretKeyRef: { name: "creds", key: "token" } });
    assert.equal(key?.value, undefined);
  });

  it("drops the Pod but keeps the Service when suspended", () => {
    const d = desiredAgent(agent({ suspended: true }), ctx);
    assert.equal(d.pod, undefined);
    assert.equal(d.service.kind, "Service");
  });

  it("makes the NetworkPolicy by default and the claim only when asked", () => {
    const plain = desiredAgent(agent(), ctx);
    assert.equal((plain.networkPolicy as Obj).kind, "NetworkPolicy", "on by default");
    assert.equal(plain.claim, undefined);
    const optedOut = desiredAgent(agent({ networkPolicy: { enabled: false } }), ctx);
    assert.equal(optedOut.networkPolicy, undefined, "enabled: false opts out");
    const full = desiredAgent(
      agent({
        networkPolicy: { egress: [{ cidr: "203.0.113.0/24", ports: [443] }] },
        storage: { size: "2Gi", bootstrapConfigMap: "defaults" },
      }),
      ctx,
    );
    const np = full.networkPolicy as Obj;
    assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
    assert.equal(np.spec.egress[1].to[0].ipBlock.cidr, "203.0.113.0/24");
    assert.equal(
      np.spec.ingress[0].from[1].namespaceSelector.matchLabels["kubernetes.io/metadata.name"],
      "agentry-system",
    );
    assert.equal(np.spec.ingress[0].from.length, 2, "no operator peer unless the context names it");
    const withOperator = desiredAgent(agent(), {
      ...ctx,
      operator: { namespace: "ops", podLabels: { "app.kubernetes.io/name": "agentry-operator" } },
    }).networkPolicy as Obj;
    assert.deepEqual(withOperator.spec.ingress[0].from[2], {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ops" } },
      podSelector: { matchLabels: { "app.kubernetes.io/name": "agentry-operator" } },
    });
    assert.equal((full.claim as Obj).spec.resources.requests.storage, "2Gi");
    const init = (full.pod as Obj).spec.initContainers[0];
    assert.match(init.command.join(" "), /cp -Rn/, "bootstrap never overwrites existing files");
  });

  it("lets an agent with a workspace reach its fleet's sandboxes, on their port only", () => {
    const fleet = {
      podLabels: { "agentry.dev/sandbox-fleet": "f", "app.kubernetes.io/managed-by": "agentry" },
    };
    const np = desiredAgent(agent({ workspaceRef: { name: "ws" } }), {
      ...ctx,
      fleet: { ...fleet, port: 9000 },
    }).networkPolicy as Obj;
    assert.deepEqual(np.spec.egress[1], {
      to: [{ podSelector: { matchLabels: fleet.podLabels } }],
      ports: [{ port: 9000, protocol: "TCP" }],
    });
    const policies = [{ metadata: { name: np.metadata.name, namespace: "team" }, spec: np.spec }];
    const self = { namespace: "team", labels: desiredAgent(agent(), ctx).pod!.metadata.labels! };
    const sandbox = { namespace: "team", labels: fleet.podLabels };
    const cases: [string, number, Destination, boolean][] = [
      ["its fleet's sandbox, on the fleet's port", 9000, sandbox, true],
      ["its fleet's sandbox, on another port", 22, sandbox, false],
      [
        "another fleet's sandbox",
        9000,
        { namespace: "team", labels: { "agentry.dev/sandbox-fleet": "g" } },
        false,
      ],
      ["DNS", 53, { ip: "10.96.0.10" }, true],
      ["the internet", 443, { ip: "192.0.2.1" }, false],
    ];
    for (const [what, port, dest, allowed] of cases)
      assert.equal(egressAllowed(policies, self, port, "TCP", dest), allowed, what);
  });

  it("points the agent at its workspace", () => {
    const d = desiredAgent(agent({ workspaceRef: { name: "ws" } }), {
      ...ctx,
      workspace: { name: "ws", endpoint: "http://10.0.0.9:8080/workspaces/ws", sandboxPod: "fleet-abc" },
    });
    const env = (d.pod as Obj).spec.containers[0].env as Obj[];
    assert.equal(
      env.find((e) => e.name === "AGENTRY_WORKSPACE_URL")?.value,
      "http://10.0.0.9:8080/workspaces/ws",
    );
  });
});

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
const now = new Date("2026-11-23T10:00:00Z");

describe("computeAgentStatus", () => {
  const cases: [string, Partial<AgentObservation>, Record<string, unknown>, string, RegExp][] = [
    ["no pod yet", {}, {}, "Pending", /creating Pod coder/],
    ["suspended", {}, { suspended: true }, "Suspended", /suspended/],
    ["workspace missing", { workspaceProblem: "Workspace ws does not exist" }, {}, "Pending", /Workspace ws/],
    [
      "unschedulable",
      {
        pod: pod({
          phase: "Pending",
          conditions: [
            {
              type: "PodScheduled",
              status: "False",
              reason: "Unschedulable",
              message: "0/3 nodes: Insufficient cpu",
            },
          ],
        }),
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
      pod: pod({
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            lastTransitionTime: since,
          } as never,
        ],
      }),
      stallAfterMs: 300_000,
    });
    assert.equal(type(unschedulable("2026-11-23T09:58:00Z")), "Reconciling");
    assert.equal(type(unschedulable("2026-11-23T09:50:00Z")), "Stalled");
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

describe("staleChild: which labelled objects the controller may delete", () => {
  const obj = (annotations: Record<string, string>, owner?: string) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "coder",
      annotations,
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: "agentry.dev/v1alpha1",
                kind: "AgentRuntime",
                name: "coder",
                uid: owner,
                controller: true,
              },
            ],
          }
        : {}),
    },
  });
  const ours = (uid: string) => ({ "agentry.dev/agent-id": uid, "agentry.dev/controller-id": "agentry" });
  const cases: [string, ReturnType<typeof obj>, string | undefined, boolean][] = [
    ["the live AgentRuntime's own child", obj(ours("uid-1"), "uid-1"), "uid-1", false],
    ["an earlier AgentRuntime's child", obj(ours("uid-0"), "uid-0"), "uid-1", true],
    ["orphaned (owner reference removed), no AgentRuntime now", obj(ours("uid-0")), undefined, true],
    ["orphaned, AgentRuntime recreated", obj(ours("uid-0")), "uid-1", true],
    ["labels only, no agentry annotations", obj({}), undefined, false],
    ["labels only, a live AgentRuntime of that name", obj({}), "uid-1", false],
    [
      "another installation's child",
      obj({ "agentry.dev/agent-id": "uid-0", "agentry.dev/controller-id": "other" }),
      undefined,
      false,
    ],
  ];
  for (const [name, o, live, stale] of cases)
    it(`${name} → ${stale ? "delete" : "keep"}`, () => assert.equal(staleChild(o, live, "agentry"), stale));
});
