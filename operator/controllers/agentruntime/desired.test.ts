// desiredAgent: the objects an AgentRuntime asks for (pure).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agent } from "./fixtures.ts";
import { ANNOTATION_SPEC_HASH, LABEL_TEMPLATE_HASH, desiredAgent, type AgentContext } from "./desired.ts";
import { egressAllowed, type Destination } from "../../../test/harness/netpol.ts";

type Obj = Record<string, any>;

const ctx: AgentContext = {
  controllerId: "agentry",
  gateway: { namespace: "agentry-system", podLabels: { "app.kubernetes.io/name": "agentry-gateway" } },
};

describe("desiredAgent", () => {
  it("builds a restricted Pod and a Service owned by the AgentRuntime", () => {
    const d = desiredAgent(agent(), ctx);
    const pod = d.pod as Obj;
    // Named after its template, so a new template's Pod can start beside the old one.
    assert.equal(pod.metadata.name, `coder-${d.templateHash}`);
    assert.equal(d.podName, pod.metadata.name);
    assert.equal(d.serviceName, "coder");
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
