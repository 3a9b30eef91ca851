// GitOps-correct status: what Flux, Argo CD and `kubectl wait`-style tools read, judged by
// cli-utils' kstatus itself (test/harness/kstatus.ts). First the status builders' verdicts on
// every failure case, then the real operator on the real control plane: objects that can make
// progress read InProgress and then Current; objects that cannot without a change read Failed
// (Stalled=True, with the reason), and Current again once the change is made.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import type { AgentRuntime, Pipeline, SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import { computeAgentStatus, type AgentObservation } from "../../operator/controllers/agentruntime/status.ts";
import { computePipelineStatus, type JobView } from "../../operator/controllers/pipeline/status.ts";
import {
  computeFleetStatus,
  computeWorkspaceStatus,
} from "../../operator/controllers/sandboxfleet/status.ts";
import { api, createCR, testNamespace, waitFor } from "../harness/cluster.ts";
import { judge, judgeAll, type KStatus } from "../harness/kstatus.ts";
import { startOperator } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";

const now = new Date("2026-11-23T10:00:00Z");
const longAgo = new Date(now.getTime() - 3_600_000) as never;
const meta = (name: string) => ({
  name,
  namespace: "team",
  uid: "u",
  generation: 3,
  creationTimestamp: longAgo,
});
const agent = (spec: Record<string, unknown> = {}): AgentRuntime => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: meta("coder"),
  spec: specSchemas.AgentRuntime.parse({ image: "registry.example/agent:1", ...spec }),
});
const agentSeen: AgentObservation = {
  podName: "coder",
  serviceName: "coder",
  serviceExists: true,
  endpoint: "http://coder.team.svc:8080",
  templateHash: "h",
};
const waiting = (reason: string) => ({
  metadata: { name: "coder" },
  status: { phase: "Pending", containerStatuses: [{ name: "agent", state: { waiting: { reason } } }] },
});
const withStatus = <T extends { status?: unknown }>(obj: T, status: T["status"]) => ({ ...obj, status });

describe("kstatus on every verdict of the status builders", () => {
  const agentCase = (spec: Record<string, unknown>, o: Partial<AgentObservation>) => {
    const a = agent(spec);
    return withStatus(a, computeAgentStatus(a, { ...agentSeen, ...o }, now));
  };
  const pipeline = (spec: Record<string, unknown>): Pipeline => ({
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Pipeline",
    metadata: meta("nightly"),
    spec: specSchemas.Pipeline.parse({ steps: [{ name: "s", image: "busybox:1" }], ...spec }),
  });
  const job = (name: string, minute: number, result: "Complete" | "Failed"): JobView => ({
    metadata: { name, creationTimestamp: `2026-11-23T09:${String(minute).padStart(2, "0")}:00Z` },
    status: {
      startTime: `2026-11-23T09:${String(minute).padStart(2, "0")}:00Z`,
      completionTime: `2026-11-23T09:${String(minute).padStart(2, "0")}:30Z`,
      conditions: [
        { type: result, status: "True", reason: result === "Failed" ? "BackoffLimitExceeded" : "Done" },
      ],
    },
  });
  const pipelineCase = (
    spec: Record<string, unknown>,
    mode: "Job" | "CronJob",
    jobs: JobView[],
    extra = {},
  ) => {
    const p = pipeline(spec);
    return withStatus(
      p,
      computePipelineStatus(
        p,
        {
          mode,
          childName: "nightly",
          childExists: true,
          manifestConfigMap: "nightly-manifest",
          jobs,
          ...extra,
        },
        now,
      ),
    );
  };
  const fleet: SandboxFleet = {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "SandboxFleet",
    metadata: meta("pool"),
    spec: specSchemas.SandboxFleet.parse({
      template: { image: "registry.example/sandbox:1" },
      maxReplicas: 3,
    }),
  };
  const fleetCase = (o: Record<string, unknown>) =>
    withStatus(
      fleet,
      computeFleetStatus(
        fleet,
        { replicas: 2, readyReplicas: 2, desiredReplicas: 2, workspaces: 1, waiting: 0, atMax: false, ...o },
        now,
      ),
    );
  const ws = (spec: Record<string, unknown> = {}): Workspace => ({
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: meta("w"),
    spec: specSchemas.Workspace.parse({ fleetRef: { name: "pool" }, ...spec }),
  });
  const wsCase = (spec: Record<string, unknown>, o: Record<string, unknown>) =>
    withStatus(ws(spec), computeWorkspaceStatus(ws(spec), o, now));
  const placement = {
    sandboxPod: "pool-1",
    endpoint: "http://pool-1:8080",
    placedAt: "2026-11-23T09:00:00Z",
  };
  const running = {
    metadata: { name: "coder" },
    status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
  };

  const cases: [string, object, KStatus][] = [
    ["agent ready", agentCase({}, { pod: running }), "Current"],
    ["agent suspended", agentCase({ suspended: true }, {}), "Current"],
    ["agent starting", agentCase({}, {}), "InProgress"],
    ["agent image cannot be pulled", agentCase({}, { pod: waiting("ImagePullBackOff") }), "Failed"],
    ["agent container config error", agentCase({}, { pod: waiting("CreateContainerConfigError") }), "Failed"],
    ["agent crash loop", agentCase({}, { pod: waiting("CrashLoopBackOff") }), "Failed"],
    ["agent name conflict", agentCase({}, { nameConflict: "Service coder is not ours" }), "Failed"],
    [
      "agent workspace missing past the bound",
      agentCase(
        { workspaceRef: { name: "w" } },
        { workspaceProblem: "Workspace w does not exist", workspaceMissing: true },
      ),
      "Failed",
    ],
    [
      "agent unschedulable past the bound",
      agentCase(
        {},
        {
          pod: {
            metadata: { name: "coder" },
            status: {
              phase: "Pending",
              conditions: [
                {
                  type: "PodScheduled",
                  status: "False",
                  reason: "Unschedulable",
                  lastTransitionTime: "2026-11-23T09:00:00Z",
                },
              ],
            },
          },
        },
      ),
      "Failed",
    ],
    ["agent write error (retried)", agentCase({}, { reconcileError: "forbidden" }), "InProgress"],
    [
      "pipeline scheduled",
      pipelineCase({ schedule: "@daily" }, "CronJob", [job("n-1", 1, "Complete")]),
      "Current",
    ],
    ["pipeline suspended", pipelineCase({ schedule: "@daily", suspended: true }, "CronJob", []), "Current"],
    [
      "pipeline one failed scheduled run",
      pipelineCase({ schedule: "@daily" }, "CronJob", [job("n-1", 1, "Failed")]),
      "InProgress",
    ],
    [
      "pipeline failing repeatedly",
      pipelineCase({ schedule: "@daily" }, "CronJob", [
        job("n-1", 1, "Failed"),
        job("n-2", 2, "Failed"),
        job("n-3", 3, "Failed"),
      ]),
      "Failed",
    ],
    ["one-shot pipeline failed", pipelineCase({}, "Job", [job("n-1", 1, "Failed")]), "Failed"],
    ["one-shot pipeline succeeded", pipelineCase({}, "Job", [job("n-1", 1, "Complete")]), "Current"],
    [
      "pipeline agent missing past the bound",
      pipelineCase({ schedule: "@daily" }, "CronJob", [], {
        agentProblem: "AgentRuntime coder does not exist",
      }),
      "Failed",
    ],
    ["fleet ready", fleetCase({}), "Current"],
    ["fleet scaling", fleetCase({ readyReplicas: 1 }), "InProgress"],
    ["fleet at capacity with waiting workspaces", fleetCase({ waiting: 2, atMax: true }), "Failed"],
    ["fleet name conflict", fleetCase({ nameConflict: "Deployment pool-sandbox is not ours" }), "Failed"],
    ["workspace ready", wsCase({}, { placement, confirmed: true }), "Current"],
    ["workspace suspended", wsCase({ suspended: true }, {}), "Current"],
    ["workspace waiting for room", wsCase({}, { waiting: "growing" }), "InProgress"],
    ["workspace fleet missing past the bound", wsCase({}, { fleetMissing: true }), "Failed"],
  ];
  const judged = judgeAll(cases.map(([, o]) => o));
  for (const [i, [name, , want]] of cases.entries())
    it(`${name} → ${want}`, () => assert.equal(judged[i]!.status, want, judged[i]!.why));
});

describe("kstatus on the real operator's status", () => {
  const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });
  const get = async (namespace: string, plural: string, name: string) =>
    (await api(k8s.CustomObjectsApi).getNamespacedCustomObject({
      ...group(plural),
      namespace,
      name,
    })) as object;
  const until = (namespace: string, plural: string, name: string, want: KStatus) =>
    waitFor(
      `${plural}/${name} ${want}`,
      async () => {
        const j = judge(await get(namespace, plural, name));
        return j.status === want ? j : undefined;
      },
      { timeoutMs: 60_000 },
    );

  it("Failed while a reference stays missing or a name is taken; Current once fixed", async (t) => {
    const ns = await testNamespace(t);
    const pods = await PodBackends.start({ namespaces: [ns] });
    t.after(() => pods.stop());
    await startOperator(t, {
      namespaces: [ns],
      leaderElect: false,
      podAddressMap: pods.mapFile,
      args: ["--stall-after=3s"],
    });

    // A workspace whose fleet does not exist (yet), an agent whose workspace does not exist (yet).
    await createCR(ns, "Workspace", "ws", { fleetRef: { name: "pool" } });
    await createCR(ns, "AgentRuntime", "coder", {
      image: "registry.example/agent:1",
      workspaceRef: { name: "ws" },
    });
    await until(ns, "workspaces", "ws", "InProgress");
    const stalledWs = await until(ns, "workspaces", "ws", "Failed");
    assert.match(stalledWs.why ?? "", /SandboxFleet pool does not exist/);
    const stalledAgent = await until(ns, "agentruntimes", "coder", "Failed");
    assert.match(stalledAgent.why ?? "", /Workspace ws cannot be placed: SandboxFleet pool does not exist/);

    // The missing fleet appears: everything becomes Current.
    await createCR(ns, "SandboxFleet", "pool", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
    });
    await until(ns, "sandboxfleets", "pool", "Current");
    await until(ns, "workspaces", "ws", "Current");
    await until(ns, "agentruntimes", "coder", "Current");

    // A Service of someone else holds the name an agent needs.
    await api(k8s.CoreV1Api).createNamespacedService({
      namespace: ns,
      body: { metadata: { name: "taken" }, spec: { ports: [{ port: 80 }] } },
    });
    await createCR(ns, "AgentRuntime", "taken", { image: "registry.example/agent:1" });
    const conflict = await until(ns, "agentruntimes", "taken", "Failed");
    assert.match(conflict.why ?? "", /Service taken/);

    // No node has room: InProgress at first, Failed past the bound.
    await createCR(ns, "AgentRuntime", "nowhere", {
      image: "registry.example/agent:1",
      resources: { requests: { cpu: "500" }, limits: { cpu: "500" } },
    });
    const unschedulable = await until(ns, "agentruntimes", "nowhere", "Failed");
    assert.match(unschedulable.why ?? "", /no node can run the agent/);
  });
});
