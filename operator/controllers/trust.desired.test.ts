import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRuntime, Pipeline, SandboxFleet } from "../../api/v1alpha1/index.ts";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import { desiredAgent } from "./agentruntime/desired.ts";
import { desiredPipeline } from "./pipeline/desired.ts";
import { desiredDeployment } from "./sandboxfleet/desired.ts";
import { tokenFor } from "./sandboxfleet/sandboxapi.ts";
import { desiredTrustBundle, tokenKeys, wantedTokens } from "./trust.desired.ts";

type Obj = Record<string, any>;
const meta = <K extends string>(name: string, kind: K) => ({
  apiVersion: "agentry.dev/v1alpha1" as const,
  kind,
  metadata: { name, namespace: "team", uid: `uid-${name}`, generation: 1 },
});
const agent = (name: string, spec: Record<string, unknown> = {}): AgentRuntime => ({
  ...meta(name, "AgentRuntime"),
  spec: specSchemas.AgentRuntime.parse({ image: "registry.example/agent:1", ...spec }),
});
const pipeline = (name: string, agents: string[]): Pipeline => ({
  ...meta(name, "Pipeline"),
  spec: specSchemas.Pipeline.parse({
    steps: [
      { name: "prep", image: "registry.example/tools:1" },
      ...agents.map((a, i) => ({ name: `ask-${i}`, agentRef: { name: a }, input: "x" })),
    ],
  }),
});
const fleet = (env: unknown[] = []): SandboxFleet => ({
  ...meta("pool", "SandboxFleet"),
  spec: specSchemas.SandboxFleet.parse({ template: { image: "registry.example/sandbox:1", env } }),
});
const ctx = {
  controllerId: "agentry",
  gateway: { namespace: "agentry-system", podLabels: {} },
};
const envOf = (c: Obj): Obj =>
  Object.fromEntries(
    (c.env as Obj[]).map((e): [string, unknown] => [e.name as string, e.value ?? e.valueFrom]),
  );

describe("trust in the pods the operator makes", () => {
  it("sandbox pods mount the trust bundle read-only and know who they are; a template cannot override it", () => {
    const d = desiredDeployment(
      fleet([{ name: "AGENTRY_TRUST_DIR", value: "/tmp/mine" }]),
      1,
      "agentry",
    ) as Obj;
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    const env = envOf(c);
    assert.equal(env.AGENTRY_TRUST_DIR, "/var/run/agentry/trust");
    assert.deepEqual(env.AGENTRY_POD_NAME, { fieldRef: { fieldPath: "metadata.name" } });
    assert.deepEqual(env.AGENTRY_POD_NAMESPACE, { fieldRef: { fieldPath: "metadata.namespace" } });
    assert.equal((c.env as Obj[]).filter((e) => e.name === "AGENTRY_TRUST_DIR").length, 1);
    assert.deepEqual(
      c.volumeMounts.find((m: Obj) => m.mountPath === "/var/run/agentry/trust"),
      { name: "agentry-trust", mountPath: "/var/run/agentry/trust", readOnly: true },
    );
    assert.deepEqual(
      pod.volumes.find((v: Obj) => v.name === "agentry-trust"),
      {
        name: "agentry-trust",
        configMap: { name: "agentry-trust" },
      },
    );
    assert.ok(!pod.volumes.some((v: Obj) => Boolean(v.secret)), "a sandbox gets no Secret");
  });

  it("an agent pod gets the bundle, and with a workspace only that workspace's token", () => {
    const alone = desiredAgent(agent("a"), ctx).pod as Obj;
    assert.ok(alone.spec.volumes.some((v: Obj) => v.name === "agentry-trust"));
    assert.ok(!alone.spec.volumes.some((v: Obj) => Boolean(v.secret)), "no token without a workspace");
    const placed = desiredAgent(agent("coder", { workspaceRef: { name: "app" } }), {
      ...ctx,
      workspace: { name: "app", endpoint: "http://10.0.0.1:8080/workspaces/team.app", sandboxPod: "p" },
    }).pod as Obj;
    const tokens = placed.spec.volumes.find((v: Obj) => Boolean(v.secret));
    assert.deepEqual(tokens.secret, {
      secretName: "agentry-tokens",
      items: [{ key: "workspace.app", path: "workspace" }],
    });
    const env = envOf(placed.spec.containers[0]);
    assert.equal(env.AGENTRY_WORKSPACE_TOKEN_FILE, "/var/run/agentry/tokens/workspace");
    assert.equal(env.AGENTRY_TRUST_DIR, "/var/run/agentry/trust");
  });

  it("a Pipeline's run pod mounts the tokens of the agents its steps name, only in their containers", () => {
    const d = desiredPipeline(pipeline("nightly", ["reviewer", "coder", "reviewer"]), {
      dispatcherImage: "registry.example/agent:1",
      agentUrls: { reviewer: "http://reviewer.team.svc:8080", coder: "http://coder.team.svc:8080" },
    });
    const pod = (d.jobTemplate.spec as Obj).template.spec;
    const tokens = pod.volumes.find((v: Obj) => Boolean(v.secret));
    assert.deepEqual(tokens.secret.items, [
      { key: "agent.coder", path: "coder" },
      { key: "agent.reviewer", path: "reviewer" },
    ]);
    const [prep, ...asks] = [...pod.initContainers, ...pod.containers];
    assert.ok(
      !prep.volumeMounts.some((m: Obj) => Boolean(m.name === "agentry-tokens")),
      "the image step sees no token",
    );
    assert.deepEqual(
      asks.map((c: Obj): unknown => envOf(c).AGENTRY_AGENT_TOKEN_FILE),
      [
        "/var/run/agentry/tokens/reviewer",
        "/var/run/agentry/tokens/coder",
        "/var/run/agentry/tokens/reviewer",
      ],
    );
    const plain = desiredPipeline(pipeline("plain", []), { dispatcherImage: "x", agentUrls: {} });
    assert.ok(!(plain.jobTemplate.spec as Obj).template.spec.volumes.some((v: Obj) => Boolean(v.secret)));
  });
});

describe("tokens and trust of a namespace", () => {
  it("wants a tasks token per existing agent a Pipeline names and a files+exec token per workspace an agent uses", () => {
    const wanted = wantedTokens(
      "team",
      [pipeline("p1", ["reviewer", "ghost"]), pipeline("p2", ["reviewer"])],
      (name) => name === "reviewer" || name === "coder",
      ["app"],
    );
    assert.deepEqual(wanted, [
      { key: "agent.reviewer", aud: "agent:team/reviewer", scope: ["tasks"] },
      { key: "workspace.app", aud: "workspace:team.app", scope: ["files", "exec"] },
    ]);
  });

  it("keeps Secret keys within 253 characters and apart", () => {
    const long = "a".repeat(253);
    assert.ok(tokenKeys.workspace(long).length <= 253);
    assert.notEqual(tokenKeys.workspace(long), tokenKeys.workspace(`${"a".repeat(252)}b`));
  });

  it("publishes only public keys, one file each", () => {
    const cm = desiredTrustBundle("team", [
      { kid: "0123456789abcdef", pem: "-----BEGIN PUBLIC KEY-----\n" },
    ]) as Obj;
    assert.deepEqual(Object.keys(cm.data), ["0123456789abcdef.pem"]);
    assert.equal(cm.metadata.name, "agentry-trust");
    assert.equal(cm.metadata.labels["agentry.dev/trust"], "bundle");
  });

  it("the operator's calls to a sandbox carry a token for that pod with the call's scope", () => {
    const target = { namespace: "team", pod: "pool-sandbox-1", address: "127.0.0.1:1" };
    assert.deepEqual(tokenFor(target, "status"), { aud: "pod:team/pool-sandbox-1", scope: ["status"] });
    assert.deepEqual(tokenFor(target, "putWorkspace").scope, ["placement"]);
    assert.deepEqual(tokenFor(target, "deleteWorkspace").scope, ["placement"]);
    assert.deepEqual(tokenFor(target, "drain").scope, ["drain"]);
    assert.deepEqual(tokenFor(target, "undrain").scope, ["drain"]);
  });
});
