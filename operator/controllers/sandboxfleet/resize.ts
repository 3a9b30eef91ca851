// A sample's decision about a fleet's size (size.ts), carried out: the pods' deletion-cost
// and draining marks (each sandbox told first), the ScaledUp/ScaledDown Event, and the
// workspaces whose flush a drain gave up on.
import type { SandboxFleet } from "../../../api/v1alpha1/index.ts";
import { workspaceIdOf, type WorkspaceInfo } from "../../../contracts/sandbox.ts";
import { validDurationMs as durationMs } from "../../../lib/cli/duration.ts";
import type { ChildWriter } from "../../../lib/kube/children.ts";
import { isNotFound, type KubeApi } from "../../../lib/kube/client.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { keyOf, splitKey } from "../../../lib/kube/informer.ts";
import type { Logger } from "../../../lib/log.ts";
import { ANNOTATION_DRAINING, ANNOTATION_DRAINING_SINCE, DELETION_COST } from "./desired.ts";
import type { Mark, SandboxSlot } from "./drain.ts";
import type { SandboxLists, WorkspacePlan } from "./plan.ts";
import type { FleetSandboxes, SandboxPod } from "./sandboxes.ts";
import type { Demand } from "./scaling.ts";
import { planSize } from "./size.ts";
import { samplingIntervalMs, type FleetState } from "./state.ts";
import { apiTime } from "./workspaces.ts";

export interface ResizeDeps {
  client: KubeApi;
  writer: ChildWriter;
  sandboxes: FleetSandboxes;
  recorder: Recorder;
  log: Logger;
}

/** What a pass saw that the size decision reads. */
export interface Seen {
  plan: WorkspacePlan;
  lists: SandboxLists;
  pods: ReadonlyMap<string, SandboxPod>;
  demand: Demand;
  /** The Deployment's replicas. */
  current: number;
  stored: boolean;
}

/** Whether the sandbox reports a workspace's latest changes as in the store. */
const flushed = (info: WorkspaceInfo | undefined) =>
  info?.durability !== undefined && info.durability.durable && !info.durability.dirty;

export class FleetResizer {
  private readonly deps: ResizeDeps;

  constructor(deps: ResizeDeps) {
    this.deps = deps;
  }

  /** A sample's decision about the fleet's size (size.ts), carried out: marks, events, lost flushes. */
  async resize(fleet: SandboxFleet, state: FleetState, seen: Seen, now: Date): Promise<number> {
    const { plan, lists, pods, demand, current, stored } = seen;
    const spec = fleet.spec;
    const infoOf = (sandbox: string, key: string) => {
      const { namespace, name } = splitKey(key);
      return lists.get(sandbox)?.get(workspaceIdOf(namespace, name));
    };
    const slots: SandboxSlot[] = plan.sandboxes.map((v) => ({
      name: v.name,
      ready: v.ready,
      workspaces: v.workspaces.map((w) => w.key),
      unflushed: v.workspaces.filter((w) => !flushed(infoOf(v.name, w.key))).map((w) => w.key),
      annotations: pods.get(v.name)?.metadata.annotations ?? {},
    }));
    const sized = planSize(
      state.size,
      {
        bounds: spec,
        demand,
        sandboxes: slots,
        current,
        livePods: pods.size,
        windows: {
          scaleUpWindow: spec.scaleUpWindow,
          scaleDownWindow: spec.scaleDownWindow,
          samplingIntervalMs: samplingIntervalMs(fleet),
          cooldownMs: durationMs(spec.cooldown),
        },
        drain: { idleTtlMs: durationMs(spec.idleTTL), drainTimeoutMs: durationMs(spec.drainTimeout), stored },
      },
      now.getTime(),
    );
    state.size = sized.state;
    for (const a of sized.abandoned)
      for (const key of a.workspaces) this.recordLost(fleet, state, key, a.sandbox, infoOf(a.sandbox, key));
    if (sized.change) {
      const { up, reason } = sized.change;
      state.lastScale = { time: apiTime(now), reason };
      this.deps.recorder.event(fleet, "Normal", up ? "ScaledUp" : "ScaledDown", reason);
      this.deps.log.info("scaling fleet", { fleet: keyOf(fleet), from: current, to: sized.replicas, reason });
    } else if (sized.held) this.deps.log.debug("fleet size held", { fleet: keyOf(fleet), why: sized.held });
    await this.writeMarks(sized.marks, pods, spec.template.port);
    return sized.replicas;
  }

  /** A drain gave up on a workspace's flush: say what was lost, on the Workspace and in an Event. */
  private recordLost(
    fleet: SandboxFleet,
    state: FleetState,
    key: string,
    pod: string,
    info?: WorkspaceInfo,
  ): void {
    if (state.lost.has(key)) return;
    const last = info?.durability?.lastFlushTime;
    const msg = `sandbox ${pod} was removed after drainTimeout (${fleet.spec.drainTimeout}) before the workspace's flush completed: changes made ${last ? `after the flush at ${last}` : "since it was placed"} were lost${info?.durability?.message ? ` (${info.durability.message})` : ""}`;
    state.lost.set(key, msg);
    this.deps.recorder.event(fleet, "Warning", "FlushLost", `${key}: ${msg}`);
    this.deps.log.info("drain gave up on a flush", { workspace: key, pod });
  }

  /** Writes the pods' deletion cost and draining marks (with the drain's start), telling each sandbox first. */
  private async writeMarks(
    marks: Mark[],
    pods: ReadonlyMap<string, SandboxPod>,
    port: number,
  ): Promise<void> {
    for (const m of marks) {
      const pod = pods.get(m.name)!;
      if (m.tell) await this.deps.sandboxes.tell(pod, port, m.tell);
      const annotations = {
        [DELETION_COST]: m.cost,
        [ANNOTATION_DRAINING]: m.draining ? "true" : null,
        [ANNOTATION_DRAINING_SINCE]: m.since !== undefined ? new Date(m.since).toISOString() : null,
      };
      // A pod gone meanwhile needs no mark (and is no write).
      await this.deps.writer
        .write("Pod", "annotate", () => this.deps.client.mergePatch(pod, { metadata: { annotations } }))
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    }
  }
}
