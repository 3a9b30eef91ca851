import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRuntime, SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import { connectionAllowed, type Policy } from "../../../test/harness/netpol.ts";
import { agentLabels, desiredAgent } from "../agentruntime/desired.ts";
import { fleetLabels } from "./desired.ts";
import { desiredFleetPolicy, fleetAgents, type FleetPolicyContext } from "./policy.ts";

const NS = "team";

function fleet(name: string, spec: Record<string, unknown> = {}): SandboxFleet {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "SandboxFleet",
    metadata: { name, namespace: NS, uid: `uid-${name}` },
    spec: specSchemas.SandboxFleet.parse({
      template: { image: "registry.example/sandbox:1", port: 8080 },
      ...spec,
    }),
  };
}

const workspace = (name: string, fleetName: string): Workspace => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: { name, namespace: NS },
  spec: specSchemas.Workspace.parse({ fleetRef: { name: fleetName } }),
});

const agent = (name: string, ws?: string, extra: Partial<AgentRuntime["metadata"]> = {}): AgentRuntime => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name, namespace: NS, uid: `uid-${name}`, ...extra },
  spec: specSchemas.AgentRuntime.parse({
    image: "registry.example/agent:1",
    ...(ws ? { workspaceRef: { name: ws } } : {}),
  }),
});

const ctx: FleetPolicyContext = {
  controllerId: "agentry",
  gateway: { namespace: "agentry-system", podLabels: { "app.kubernetes.io/name": "agentry-gateway" } },
  operator: { namespace: "agentry-system", podLabels: { "app.kubernetes.io/name": "agentry-operator" } },
};

const workspaces = [workspace("alice", "f"), workspace("bob", "f"), workspace("carol", "g")];
const agents = [
  agent("coder", "alice"),
  agent("reviewer", "bob"),
  agent("other-fleet", "carol"),
  agent("no-workspace"),
  agent("missing-ws", "nobody"),
  agent("leaving", "alice", { deletionTimestamp: "2026-11-23T10:00:00Z" }),
];

describe("fleetAgents", () => {
  it("names the AgentRuntimes whose workspace is on the fleet, sorted", () => {
    assert.deepEqual(fleetAgents("f", workspaces, agents), ["coder", "reviewer"]);
    assert.deepEqual(fleetAgents("g", workspaces, agents), ["other-fleet"]);
    assert.deepEqual(fleetAgents("h", workspaces, agents), []);
  });
  it("does not depend on list order", () => {
    assert.deepEqual(
      fleetAgents("f", [...workspaces].reverse(), [...agents].reverse()),
      fleetAgents("f", workspaces, agents),
    );
  });
});

describe("desiredFleetPolicy", () => {
  const policy = desiredFleetPolicy(fleet("f"), fleetAgents("f", workspaces, agents), ctx)!;

  it("is owned by the fleet, selects its sandboxes and restricts ingress only", () => {
    assert.equal(policy.metadata.name, "f-sandbox");
    assert.equal(policy.metadata.ownerReferences?.[0]?.uid, "uid-f");
    assert.equal(policy.metadata.ownerReferences?.[0]?.controller, true);
    assert.equal(policy.metadata.labels?.["agentry.dev/sandbox-fleet"], "f");
    assert.deepEqual((policy["spec"] as { policyTypes: string[] }).policyTypes, ["Ingress"]);
  });

  it("is not made when the fleet opts out", () => {
    assert.equal(desiredFleetPolicy(fleet("f", { networkPolicy: { enabled: false } }), [], ctx), undefined);
  });

  it("changes with the agents, and only with them", () => {
    const again = desiredFleetPolicy(fleet("f"), ["coder", "reviewer"], ctx)!;
    assert.deepEqual(again, policy);
    const fewer = desiredFleetPolicy(fleet("f"), ["coder"], ctx)!;
    assert.notEqual(
      fewer.metadata.annotations?.["agentry.dev/spec-hash"],
      policy.metadata.annotations?.["agentry.dev/spec-hash"],
    );
  });

  // Who can open a connection to a sandbox of fleet f, with every policy the operator makes
  // in place (the fleet's, and each agent's own default policy).
  const agentPolicies = agents.map((a) => {
    const ws = a.spec.workspaceRef?.name;
    const onFleet = workspaces.find((w) => w.metadata.name === ws)?.spec.fleetRef.name;
    return desiredAgent(a, {
      controllerId: "agentry",
      gateway: ctx.gateway,
      ...(onFleet
        ? {
            fleet: {
              podLabels: { "agentry.dev/sandbox-fleet": onFleet, "app.kubernetes.io/managed-by": "agentry" },
              port: 8080,
            },
          }
        : {}),
    }).networkPolicy!;
  });
  const policies = [policy, ...agentPolicies].map(
    (p) => ({ metadata: p.metadata, spec: p["spec"] }) as Policy,
  );
  const nsLabels = (namespace: string) => ({ "kubernetes.io/metadata.name": namespace });
  const pod = (namespace: string, labels: Record<string, string>) => ({
    namespace,
    labels,
    namespaceLabels: nsLabels(namespace),
  });
  const sandbox = pod(NS, fleetLabels("f"));
  const cases: [string, ReturnType<typeof pod>, number, boolean][] = [
    ["the operator", pod("agentry-system", { "app.kubernetes.io/name": "agentry-operator" }), 8080, true],
    ["the gateway", pod("agentry-system", { "app.kubernetes.io/name": "agentry-gateway" }), 8080, true],
    ["an agent whose workspace is on the fleet", pod(NS, agentLabels("coder")), 8080, true],
    ["another agent whose workspace is on the fleet", pod(NS, agentLabels("reviewer")), 8080, true],
    ["an agent of the fleet, on another port", pod(NS, agentLabels("coder")), 22, false],
    ["an agent whose workspace is on another fleet", pod(NS, agentLabels("other-fleet")), 8080, false],
    ["an agent without a workspace", pod(NS, agentLabels("no-workspace")), 8080, false],
    ["any other pod of the namespace", pod(NS, { app: "tenant" }), 8080, false],
    ["a sandbox of another fleet", pod(NS, fleetLabels("g")), 8080, false],
    [
      "a pod named like the gateway in the tenant's namespace",
      pod(NS, { "app.kubernetes.io/name": "agentry-gateway" }),
      8080,
      false,
    ],
    [
      "a pod labelled like the agent, in another namespace",
      pod("elsewhere", agentLabels("coder")),
      8080,
      false,
    ],
  ];
  for (const [name, from, port, allowed] of cases)
    it(`${name} → ${allowed ? "allowed" : "denied"}`, () =>
      assert.equal(connectionAllowed(policies, from, sandbox, port), allowed));
});
