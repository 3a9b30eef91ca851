// Where a data-plane request goes: a Workspace's sandbox pod or an AgentRuntime's pod, found
// from the object's status, proved to be agentry's by the owner chain with uids (as the
// operator proves it, lib/kube/owners.ts), reached only through PodAddresses (the pod IP in
// a cluster; with --pod-address-map only loopback processes), and called with a short-lived
// token the gateway signs for that one workspace or agent and the one scope of the call.
// Objects are read with the gateway's own identity, after the caller's SubjectAccessReview.
import type { AgentRuntime, SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import { workspaceIdOf } from "../../contracts/sandbox.ts";
import { Audience, type TokenScope } from "../../contracts/tokens.ts";
import { ApiError, isNotFound, type KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { agentPodProblem, sandboxPodProblem } from "../../lib/kube/owners.ts";
import type { PodAddresses } from "../../lib/kube/podaddresses.ts";
import type { TokenSigner } from "../../lib/tokens.ts";
import { problemOf } from "../problem.ts";
import { DEFAULT_WAKE_WAIT_MS, WAKE_POLL_MS, wake, wakes } from "./wake.ts";

/** Lifetime of a token the gateway signs for one call (a streamed exec may outlive it: the sandbox checks it once). */
export const CALL_TOKEN_SECONDS = 120;

export interface TargetDeps {
  /** The gateway's own client (not impersonated). */
  kube: KubeClient;
  addresses: PodAddresses;
  /** The gateway's current signing key; undefined until its key ring was read. */
  signer: () => TokenSigner | undefined;
  /** How long a request waits for a workspace suspended for idleness to wake (default 30 s). */
  wakeWaitMs?: number;
}

type Pod = KubeObject & { status?: { podIP?: string; phase?: string } };

const controllerOf = (o: KubeObject) => o.metadata.ownerReferences?.find((r) => r.controller);

async function getOr404<T extends KubeObject>(
  kube: KubeClient,
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
): Promise<T | undefined> {
  try {
    return await kube.get<T>(apiVersion, kind, namespace, name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function tokenFor(
  deps: TargetDeps,
  aud: string,
  scope: TokenScope,
  sub: string,
): Promise<string> {
  const signer = deps.signer();
  if (!signer)
    throw problemOf(
      503,
      "the gateway's signing key is not available yet (its key ring Secret could not be read); retry shortly",
      { headers: { "retry-after": "2" } },
    );
  return signer.sign({ aud, scope: [scope], sub, ttlSeconds: CALL_TOKEN_SECONDS });
}

export interface WorkspaceTarget {
  client: SandboxClient;
  /** The workspace's id on its sandbox. */
  id: string;
  pod: string;
}

/** Why a workspace cannot take data-plane calls now (409), from its spec and status. */
export function unplacedReason(ws: Workspace): string | undefined {
  const ref = `Workspace ${ws.metadata.namespace}/${ws.metadata.name}`;
  if (ws.spec?.suspended)
    return `${ref} is suspended (spec.suspended: true); set it to false to place it again`;
  if (!ws.status?.sandboxPod) {
    const ready = ws.status?.conditions?.find((c) => c.type === "Ready");
    const why = ready?.message || ready?.reason || "the operator has not placed it yet";
    return `${ref} is not placed on a sandbox (phase ${ws.status?.phase ?? "unknown"}): ${why}`;
  }
  return undefined;
}

/** The sandbox holding workspace `namespace/name`, with a client that signs tokens of `scope`. */
export async function workspaceTarget(
  deps: TargetDeps,
  namespace: string,
  name: string,
  scope: "files" | "exec",
  caller: string,
): Promise<WorkspaceTarget> {
  const { kube } = deps;
  let ws = await getOr404<Workspace & KubeObject>(kube, "agentry.dev/v1alpha1", "Workspace", namespace, name);
  if (!ws) throw problemOf(404, `Workspace ${namespace}/${name} not found`);
  if (wakes(ws)) ws = await wake(kube, ws, deps.wakeWaitMs ?? DEFAULT_WAKE_WAIT_MS);
  const why = unplacedReason(ws);
  if (why) throw problemOf(409, why, { extra: { phase: ws.status?.phase ?? null } });
  const podName = ws.status!.sandboxPod!;
  const moved = () =>
    problemOf(
      409,
      `the sandbox pod ${podName} of Workspace ${namespace}/${name} is gone; the operator places the workspace again, retry shortly`,
      { headers: { "retry-after": "2" } },
    );
  const pod = await getOr404<Pod>(kube, "v1", "Pod", namespace, podName);
  if (!pod || pod.metadata.deletionTimestamp) throw moved();
  const fleet = await getOr404<SandboxFleet & KubeObject>(
    kube,
    "agentry.dev/v1alpha1",
    "SandboxFleet",
    namespace,
    ws.spec.fleetRef.name,
  );
  if (!fleet) throw problemOf(409, `the SandboxFleet ${ws.spec.fleetRef.name} of the workspace is gone`);
  const rsRef = controllerOf(pod);
  const rs =
    rsRef?.kind === "ReplicaSet"
      ? await getOr404(kube, "apps/v1", "ReplicaSet", namespace, rsRef.name)
      : undefined;
  const depRef = rs ? controllerOf(rs) : undefined;
  const deployment =
    depRef?.kind === "Deployment"
      ? await getOr404(kube, "apps/v1", "Deployment", namespace, depRef.name)
      : undefined;
  const problem = sandboxPodProblem(pod, fleet.metadata.uid, deployment, rs ? [rs] : []);
  if (problem)
    throw problemOf(
      502,
      `the gateway does not call pod ${podName}: it is not a sandbox of fleet ${fleet.metadata.name} (${problem.reason})`,
    );
  const address = deps.addresses.addressOf(pod, fleet.spec.template.port ?? 8080);
  if (!address)
    throw problemOf(503, `the sandbox pod ${podName} has no address yet; retry shortly`, {
      headers: { "retry-after": "2" },
    });
  const id = workspaceIdOf(namespace, name);
  const aud = Audience.workspace(id);
  return {
    id,
    pod: podName,
    client: new SandboxClient({
      baseUrl: `http://${address}`,
      token: () => tokenFor(deps, aud, scope, caller),
      timeoutMs: 30_000,
    }),
  };
}

export interface AgentTarget {
  baseUrl: string;
  token: () => Promise<string>;
}

type Agent = AgentRuntime & KubeObject;

const agentReady = (ar: Agent) => ar.status?.phase === "Ready" && !!ar.status.podName;

/**
 * An agent whose workspace the operator suspended for idleness has no Pod (it waits for its
 * workspace): a task wakes the workspace and waits, within the same bound as a workspace
 * call, for the agent to be Ready and reachable again (waking the workspace again should it
 * fall asleep before the agent's Pod is up); past the bound, the not-Ready 503.
 */
async function wakeAgent(deps: TargetDeps, ar: Agent): Promise<Agent> {
  const ref = ar.spec.workspaceRef?.name;
  if (!ref || agentReady(ar) || ar.spec.suspended) return ar;
  const { kube } = deps;
  const namespace = ar.metadata.namespace!;
  const read = <T extends KubeObject>(kind: string, name: string) =>
    getOr404<T>(kube, "agentry.dev/v1alpha1", kind, namespace, name);
  let ws = await read<Workspace & KubeObject>("Workspace", ref);
  if (!ws || !wakes(ws)) return ar;
  const deadline = Date.now() + (deps.wakeWaitMs ?? DEFAULT_WAKE_WAIT_MS);
  // Ready, and its new pod reachable (the address may come a moment after the status).
  const reachable = async (a: Agent) => {
    if (!agentReady(a)) return false;
    const pod = await getOr404<Pod>(kube, "v1", "Pod", namespace, a.status!.podName!);
    return !!pod && deps.addresses.addressOf(pod, a.spec.port ?? 8080) !== undefined;
  };
  let current = ar;
  for (;;) {
    if (ws && wakes(ws)) {
      try {
        await wake(kube, ws, Math.max(0, deadline - Date.now()));
      } catch {
        return current; // still asleep past the bound: the agent's own 503 says why
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) return current;
    await new Promise((resolve) => setTimeout(resolve, Math.min(WAKE_POLL_MS, left)));
    const next = await read<Agent>("AgentRuntime", ar.metadata.name!);
    if (!next) return current;
    current = next;
    if (await reachable(current)) return current;
    ws = await read<Workspace & KubeObject>("Workspace", ref);
  }
}

/**
 * AgentRuntime `namespace/name`'s pod, when Ready (else 503 with its readinessReason); with
 * `wake`, an agent waiting for its idle-suspended workspace wakes it first.
 */
export async function agentTarget(
  deps: TargetDeps,
  namespace: string,
  name: string,
  caller: string,
  o: { wake?: boolean } = {},
): Promise<AgentTarget> {
  const { kube } = deps;
  let ar = await getOr404<Agent>(kube, "agentry.dev/v1alpha1", "AgentRuntime", namespace, name);
  if (!ar) throw problemOf(404, `AgentRuntime ${namespace}/${name} not found`);
  if (o.wake) ar = await wakeAgent(deps, ar);
  const phase = ar.status?.phase ?? "Pending";
  if (phase !== "Ready" || !ar.status?.podName) {
    const reason = ar.status?.readinessReason ?? "the operator has not reported on it yet";
    throw problemOf(503, `AgentRuntime ${namespace}/${name} is not Ready (phase ${phase}): ${reason}`, {
      extra: { phase, readinessReason: ar.status?.readinessReason ?? null },
      headers: { "retry-after": "5" },
    });
  }
  const pod = await getOr404<Pod>(kube, "v1", "Pod", namespace, ar.status.podName);
  if (!pod)
    throw problemOf(503, `the pod of AgentRuntime ${namespace}/${name} is gone; the operator recreates it`, {
      extra: { phase, readinessReason: "pod gone" },
      headers: { "retry-after": "5" },
    });
  const problem = agentPodProblem(pod, ar.metadata.uid);
  if (problem) throw problemOf(502, `the gateway does not call pod ${pod.metadata.name}: ${problem.reason}`);
  const address = deps.addresses.addressOf(pod, ar.spec.port ?? 8080);
  if (!address)
    throw problemOf(503, `the pod of AgentRuntime ${namespace}/${name} has no address yet`, {
      extra: { phase, readinessReason: "no pod address" },
    });
  const aud = Audience.agent(namespace, name);
  return { baseUrl: `http://${address}`, token: () => tokenFor(deps, aud, "tasks", caller) };
}

/** An unreachable pod is a 502; anything else from the apiserver keeps its meaning. */
export function isTransport(err: unknown): boolean {
  return err instanceof ApiError && err.status === 0;
}
