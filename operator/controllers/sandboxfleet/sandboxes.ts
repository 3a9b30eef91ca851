// The fleet controller's calls to its sandbox pods (sandboxapi.ts), each to a pod whose
// owner chain was checked by the caller: load samples, what each holds, placing, releasing
// and removing a workspace, and telling a pod to drain or take work again. A sandbox that
// does not answer is read as unknown, never as an error of the pass.
import type { Workspace } from "../../../api/v1alpha1/index.ts";
import type { Released } from "../../../contracts/sandbox.client.ts";
import type { CreateWorkspaceRequest, WorkspaceInfo } from "../../../contracts/sandbox.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { keyOf } from "../../../lib/kube/informer.ts";
import type { PodAddresses } from "../../../lib/kube/podaddresses.ts";
import { podReady } from "../../../lib/kube/projections.ts";
import { errorMessage, type Logger } from "../../../lib/log.ts";
import { workspaceId } from "./desired.ts";
import type { SandboxLists } from "./plan.ts";
import type { SandboxApi, SandboxTarget } from "./sandboxapi.ts";
import type { SandboxLoad } from "./state.ts";

export interface SandboxPod extends KubeObject {
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export class FleetSandboxes {
  private readonly api: SandboxApi;
  private readonly addresses: PodAddresses;
  private readonly log: Logger;

  constructor(api: SandboxApi, addresses: PodAddresses, log: Logger) {
    this.api = api;
    this.addresses = addresses;
    this.log = log;
  }

  /** Where to call a sandbox pod, if it has an address. */
  target(pod: SandboxPod, port: number): SandboxTarget | undefined {
    const address = this.addresses.addressOf(pod, port);
    return address ? { namespace: pod.metadata.namespace!, pod: pod.metadata.name!, address } : undefined;
  }

  /** One load sample: what each ready sandbox reports of itself (those that answer). */
  async loads(pods: readonly SandboxPod[], port: number): Promise<Map<string, SandboxLoad>> {
    const out = new Map<string, SandboxLoad>();
    await Promise.all(
      pods.filter(podReady).map(async (pod) => {
        const target = this.target(pod, port);
        const s = target ? await this.api.status(target).catch(() => undefined) : undefined;
        if (s)
          out.set(pod.metadata.name!, {
            cpu: s.cpu,
            memory: s.memory,
            draining: s.draining,
            wakeRequests: s.wakeRequests ?? [],
          });
      }),
    );
    return out;
  }

  /** What each ready sandbox among `homes` says of its workspaces (one call per sandbox). */
  async lists(pods: readonly SandboxPod[], homes: ReadonlySet<string>, port: number): Promise<SandboxLists> {
    const out = new Map<string, Map<string, WorkspaceInfo>>();
    await Promise.all(
      pods
        .filter((p) => podReady(p) && homes.has(p.metadata.name!))
        .map(async (pod) => {
          const target = this.target(pod, port);
          const items = target ? await this.api.listWorkspaces(target).catch(() => undefined) : undefined;
          if (items) out.set(pod.metadata.name!, new Map(items.map((i) => [i.id, i])));
        }),
    );
    return out;
  }

  /** Creates the workspace on its sandbox (idempotent). */
  put(
    target: SandboxTarget,
    ws: Workspace,
    source: CreateWorkspaceRequest["source"],
  ): Promise<WorkspaceInfo> {
    return this.api.putWorkspace(target, workspaceId(ws), ws.spec.ownerId, source);
  }

  /** Removes the workspace from its sandbox, without a flush; a failure is logged. */
  async remove(ws: Workspace, pod: SandboxPod | undefined, port: number): Promise<void> {
    const target = pod ? this.target(pod, port) : undefined;
    if (!target) return;
    await this.api.deleteWorkspace(target, workspaceId(ws)).catch((err: unknown) => {
      this.log.warn("could not remove workspace from sandbox", {
        workspace: keyOf(ws),
        error: errorMessage(err),
      });
    });
  }

  /**
   * Takes the workspace off its sandbox, flushing first when there is a store: "flushing"
   * while the flush runs (the workspace keeps its sandbox until it is done).
   */
  async release(
    ws: Workspace,
    pod: SandboxPod | undefined,
    port: number,
    stored: boolean,
  ): Promise<Released> {
    const target = pod ? this.target(pod, port) : undefined;
    if (!target) return { state: "gone" };
    if (!stored) {
      await this.remove(ws, pod, port);
      return { state: "gone" };
    }
    try {
      return await this.api.releaseWorkspace(target, workspaceId(ws));
    } catch (err) {
      this.log.info("could not release workspace from its sandbox", {
        workspace: keyOf(ws),
        error: errorMessage(err),
      });
      return { state: "flushing" };
    }
  }

  /** Tells the sandbox to stop taking workspaces (and flush), or to take them again. */
  async tell(pod: SandboxPod, port: number, what: "drain" | "undrain"): Promise<void> {
    const target = this.target(pod, port);
    if (!target) return;
    await (what === "drain" ? this.api.drain(target) : this.api.undrain(target)).catch(() => undefined);
  }
}
