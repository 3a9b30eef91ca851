// Fixture builders for the store broker's tests: a fleet, its Deployment, ReplicaSet and
// sandbox pod (the owner chain), and a Workspace placed on that pod.
import type { SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { LABEL_FLEET } from "../controllers/sandboxfleet/desired.ts";
import type { BrokerInputs, PodCaller } from "./policy.ts";

const ref = (apiVersion: string, kind: string, name: string, uid: string) => ({
  apiVersion,
  kind,
  name,
  uid,
  controller: true,
});

export function brokerWorld(ns = "team", placedOn = "fleet-sandbox-1") {
  const fleet = {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "SandboxFleet",
    metadata: { name: "fleet", namespace: ns, uid: "fleet-uid" },
    spec: {},
  } as unknown as SandboxFleet;
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "fleet-sandbox",
      namespace: ns,
      uid: "dep-uid",
      ownerReferences: [ref("agentry.dev/v1alpha1", "SandboxFleet", "fleet", "fleet-uid")],
    },
  };
  const rs: KubeObject = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: "fleet-sandbox-x",
      namespace: ns,
      uid: "rs-uid",
      ownerReferences: [ref("apps/v1", "Deployment", "fleet-sandbox", "dep-uid")],
    },
  };
  const pod = (name: string, uid: string): KubeObject => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      uid,
      labels: { [LABEL_FLEET]: "fleet" },
      ownerReferences: [ref("apps/v1", "ReplicaSet", "fleet-sandbox-x", "rs-uid")],
    },
  });
  const pods = [pod("fleet-sandbox-1", "pod-1-uid"), pod("fleet-sandbox-2", "pod-2-uid")];
  const workspace = (name: string, sandboxPod?: string) =>
    ({
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name, namespace: ns },
      spec: { fleetRef: { name: "fleet" } },
      status: sandboxPod ? { sandboxPod } : {},
    }) as unknown as Workspace;
  const workspaces = [workspace("ws", placedOn), workspace("elsewhere", "fleet-sandbox-2")];
  const caller = (podName = "fleet-sandbox-1", uid = "pod-1-uid"): PodCaller => ({
    namespace: ns,
    pod: podName,
    uid,
  });
  /** What the broker's cache lookup gives for a caller and a workspace id. */
  const inputs = (c: PodCaller, id: string): Omit<BrokerInputs, "caller" | "workspaceId"> => ({
    pod: pods.find((p) => p.metadata.name === c.pod),
    fleet,
    deployment,
    replicaSets: [rs],
    workspace: workspaces.find((w) => `${ns}.${w.metadata.name}` === id),
  });
  return { fleet, deployment, rs, pods, workspaces, caller, inputs };
}
