import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agentPodProblem, sandboxPodProblem } from "./owners.ts";

const ref = (kind: string, uid: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: kind === "ReplicaSet" || kind === "Deployment" ? "apps/v1" : "agentry.dev/v1alpha1",
  kind,
  name: `${kind.toLowerCase()}-x`,
  uid,
  controller: true,
  ...extra,
});
const obj = (name: string, uid: string, owners: ReturnType<typeof ref>[] = []) => ({
  metadata: { name, uid, ownerReferences: owners },
});

const fleetUid = "fleet-1";
const deployment = obj("f-sandbox", "dep-1", [ref("SandboxFleet", fleetUid)]);
const rs = obj("f-sandbox-abc", "rs-1", [ref("Deployment", "dep-1")]);
const ownPod = obj("f-sandbox-abc-1", "pod-1", [ref("ReplicaSet", "rs-1")]);

describe("owner chain: sandbox pods", () => {
  it("accepts the fleet's pod: ReplicaSet → Deployment → fleet, uids checked", () => {
    assert.equal(sandboxPodProblem(ownPod, fleetUid, deployment, [rs]), undefined);
  });

  const refused: [string, Parameters<typeof sandboxPodProblem>, RegExp, boolean][] = [
    [
      "a pod with the labels and no owner",
      [obj("fake", "p", []), fleetUid, deployment, [rs]],
      /not controlled by a ReplicaSet/,
      false,
    ],
    [
      "a pod owned (not as controller) by the ReplicaSet",
      [obj("fake", "p", [ref("ReplicaSet", "rs-1", { controller: false })]), fleetUid, deployment, [rs]],
      /not controlled by a ReplicaSet/,
      false,
    ],
    [
      "a pod naming the ReplicaSet's name with another uid",
      [obj("fake", "p", [ref("ReplicaSet", "forged")]), fleetUid, deployment, [rs]],
      /is not known/,
      true,
    ],
    [
      "a pod of another Deployment's ReplicaSet",
      [ownPod, fleetUid, deployment, [obj("f-sandbox-abc", "rs-1", [ref("Deployment", "other-dep")])]],
      /is not controlled by Deployment f-sandbox/,
      false,
    ],
    [
      "a pod controlled by a Job",
      [obj("fake", "p", [{ ...ref("Job", "rs-1"), apiVersion: "batch/v1" }]), fleetUid, deployment, [rs]],
      /not controlled by a ReplicaSet/,
      false,
    ],
    [
      "a Deployment of that name that the fleet does not control",
      [ownPod, fleetUid, obj("f-sandbox", "dep-1", [ref("SandboxFleet", "another-fleet")]), [rs]],
      /not controlled by this fleet/,
      false,
    ],
    ["no Deployment yet", [ownPod, fleetUid, undefined, [rs]], /no Deployment yet/, true],
  ];
  for (const [name, args, reason, settling] of refused)
    it(`refuses ${name}`, () => {
      const problem = sandboxPodProblem(...args);
      assert.match(problem?.reason ?? "", reason);
      assert.equal(problem?.settling, settling);
    });
});

describe("owner chain: agent pods", () => {
  it("accepts only the pod its AgentRuntime controls", () => {
    assert.equal(agentPodProblem(obj("a", "p", [ref("AgentRuntime", "ar-1")]), "ar-1"), undefined);
    assert.match(
      agentPodProblem(obj("a", "p", [ref("AgentRuntime", "ar-old")]), "ar-1")?.reason ?? "",
      /not controlled/,
    );
    assert.ok(agentPodProblem(obj("a", "p", []), "ar-1"));
    assert.ok(agentPodProblem(obj("a", "p", [ref("AgentRuntime", "ar-1", { controller: false })]), "ar-1"));
    assert.ok(agentPodProblem(obj("a", "p", [ref("AgentRuntime", "ar-1")]), undefined));
  });
});
