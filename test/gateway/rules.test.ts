// The webhook's admission rules in the gateway: a write the rules deny gets the rule's HTTP
// code and exactly the message lib/admission validate() gives for the same object, leaves
// the cluster unchanged, writes no audit record and keeps no Idempotency-Key; warnings come
// back as Warning headers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KINDS, type KindDefinition } from "../../api/v1alpha1/index.ts";
import { KubeClient } from "../../lib/kube/client.ts";
import { kubeLookup } from "../../lib/admission/lookup.ts";
import { DEFAULT_POLICY, validate, type AdmissionObject, type Verdict } from "../../lib/admission/index.ts";
import { kubeConfig, kubectl, testNamespace } from "../harness/cluster.ts";
import { createFleet, startGateway, type Gateway } from "./harness.ts";

const kindOf = (kind: string): KindDefinition => KINDS.find((k) => k.kind === kind)!;

/** What lib/admission says about `body` (as stored: namespace and schema defaults filled in). */
async function webhookVerdict(
  kind: string,
  namespace: string,
  body: { metadata: object },
  old?: AdmissionObject,
): Promise<Verdict> {
  const def = kindOf(kind);
  const object = def.object.parse({
    apiVersion: def.apiVersion,
    kind,
    ...body,
    metadata: { ...body.metadata, namespace },
  }) as AdmissionObject;
  const lookup = kubeLookup(new KubeClient(kubeConfig()), 5_000, false);
  return validate(kind, object, old, lookup, DEFAULT_POLICY);
}

/** The object as the apiserver stores it (what the webhook gets as oldObject). */
async function storedObject(kind: string, ns: string, name: string): Promise<AdmissionObject> {
  const obj = await new KubeClient(kubeConfig()).get("agentry.dev/v1alpha1", kind, ns, name);
  return obj as unknown as AdmissionObject;
}

async function names(plural: string, ns: string): Promise<string> {
  const r = await kubectl(["get", plural, "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function noTrace(gw: Gateway, key: string): Promise<void> {
  const audit = await gw.pool.query("SELECT verb, outcome FROM audit_log");
  assert.deepEqual(audit.rows, [], "a denied write leaves no audit record");
  const keys = await gw.pool.query("SELECT 1 FROM idempotency_keys WHERE key = $1", [key]);
  assert.equal(keys.rowCount, 0, "a denied write keeps no Idempotency-Key");
}

const pipeline = (name: string, step: object, extra: object = {}) => ({
  metadata: { name },
  spec: { schedule: "@once", activeDeadlineSeconds: 600, steps: [{ name: "s", ...step }], ...extra },
});

describe("gateway admission rules (shared with the webhook)", () => {
  const creates = [
    {
      name: "a Workspace naming a missing SandboxFleet",
      kind: "Workspace",
      body: { metadata: { name: "w" }, spec: { fleetRef: { name: "no-such-fleet" } } },
      status: 422,
      field: "spec.fleetRef.name",
    },
    {
      name: "a Pipeline step naming a missing AgentRuntime",
      kind: "Pipeline",
      body: pipeline("p", { agentRef: { name: "no-such-agent" } }),
      status: 422,
      field: "spec.steps[0].agentRef.name",
    },
    {
      name: "an AgentRuntime with a :latest image",
      kind: "AgentRuntime",
      body: { metadata: { name: "a" }, spec: { image: "ghcr.io/acme/agent:latest" } },
      status: 403,
      field: "spec.image",
    },
  ];
  for (const c of creates)
    it(`denies creating ${c.name} with the webhook's status and message`, async (t) => {
      const ns = await testNamespace(t);
      const gw = await startGateway(t);
      const plural = kindOf(c.kind).plural;
      const want = await webhookVerdict(c.kind, ns, c.body);
      assert.equal(want.allowed, false, "the webhook rules deny this object");
      const r = await gw.call("POST", `/v1/namespaces/${ns}/${plural}`, {
        body: c.body,
        headers: { "idempotency-key": "denied-once" },
      });
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      assert.equal(r.status, want.code);
      assert.match(r.headers.get("content-type") ?? "", /application\/problem\+json/);
      assert.equal(r.body.detail, want.message);
      assert.deepEqual(
        (r.body.errors as { path: string }[]).map((e) => e.path),
        [c.field],
      );
      assert.equal(await names(plural, ns), "", "nothing was created");
      await noTrace(gw, "denied-once");
    });

  it("denies deleting a SandboxFleet that hosts Workspaces (409), and the fleet stays", async (t) => {
    const ns = await testNamespace(t);
    await createFleet(ns, "busy");
    const ws = {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name: "w1", namespace: ns },
    };
    const made = await kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({ ...ws, spec: { fleetRef: { name: "busy" } } }),
    );
    assert.equal(made.code, 0, made.stderr);
    const gw = await startGateway(t);
    const stored = await storedObject("SandboxFleet", ns, "busy");
    const lookup = kubeLookup(new KubeClient(kubeConfig()), 5_000, false);
    const want = await validate("SandboxFleet", undefined, stored, lookup, DEFAULT_POLICY);
    assert.equal(want.allowed, false);

    const r = await gw.call("DELETE", `/v1/namespaces/${ns}/sandboxfleets/busy`);
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.detail, want.message);
    assert.match(String(r.body.detail), /still hosts 1 Workspace\(s\) \(w1\)/);
    assert.equal(await names("sandboxfleets", ns), "busy", "the fleet is still there");
    await noTrace(gw, "none");

    // Once the workspace is gone the same request goes through.
    assert.equal((await kubectl(["delete", "workspace", "w1", "-n", ns, "--wait=true"])).code, 0);
    const ok = await gw.call("DELETE", `/v1/namespaces/${ns}/sandboxfleets/busy`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it("denies a merge patch to a :latest image and a replace to a missing agent, changing nothing", async (t) => {
    const ns = await testNamespace(t);
    await createFleet(ns, "f");
    const gw = await startGateway(t);
    const base = `/v1/namespaces/${ns}/sandboxfleets/f`;
    const before = await gw.call("GET", base);
    const patch = { spec: { template: { image: "busybox:latest" } } };
    const patched = await gw.call("PATCH", base, { body: patch });
    assert.equal(patched.status, 403, JSON.stringify(patched.body));
    assert.match(
      String(patched.body.detail),
      /^spec\.template\.image: image "busybox:latest" uses the tag latest/,
    );
    const after = await gw.call("GET", base);
    assert.equal(after.headers.get("etag"), before.headers.get("etag"), "the fleet is unchanged");

    const p = pipeline("p", { image: "busybox:1.36" });
    assert.equal((await gw.call("POST", `/v1/namespaces/${ns}/pipelines`, { body: p })).status, 201);
    const replaced = pipeline("p", { agentRef: { name: "ghost" } });
    const stored = await storedObject("Pipeline", ns, "p");
    const want = await webhookVerdict("Pipeline", ns, replaced, stored);
    const r = await gw.call("PUT", `/v1/namespaces/${ns}/pipelines/p`, { body: replaced });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.detail, want.message);
    const step = await kubectl(["get", "pipeline", "p", "-n", ns, "-o", "jsonpath={.spec.steps[0].image}"]);
    assert.equal(step.stdout, "busybox:1.36");
  });

  it("sends the rules' warnings as Warning headers on an allowed write", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const body = pipeline("no-deadline", { image: "busybox:1.36" });
    delete (body.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds;
    const want = await webhookVerdict("Pipeline", ns, body);
    assert.equal(want.allowed, true);
    assert.equal(want.warnings.length, 1);
    const r = await gw.call("POST", `/v1/namespaces/${ns}/pipelines`, { body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.headers.get("warning"), `299 - "${want.warnings[0]}"`);
    assert.match(want.warnings[0]!, /^spec\.activeDeadlineSeconds: not set/);
    assert.equal(await names("pipelines", ns), "no-deadline");
  });
});
