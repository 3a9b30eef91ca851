// The fleet controller's writes to its Workspaces and the sandbox calls each needs: the
// cleanup finalizer, idle suspension, releasing a deleted or suspended workspace (flushed
// first when the fleet has a store), confirming a placement on its sandbox, and status.
// Every answer of the apiserver is kept in PendingWrites, so the next pass reads what was
// written even before the watch brings it; the cached objects are never changed.
import type { SandboxFleet, Workspace } from "../../../api/v1alpha1/index.ts";
import { ANNOTATION_IDLE_SUSPENDED } from "../../../api/v1alpha1/index.ts";
import type { Released } from "../../../contracts/sandbox.client.ts";
import { workspaceUrl, type CreateWorkspaceRequest, type WorkspaceInfo } from "../../../contracts/sandbox.ts";
import type { ChildWriter } from "../../../lib/kube/children.ts";
import { isNotFound, type KubeApi, type KubeObject } from "../../../lib/kube/client.ts";
import { sameStatus } from "../../../lib/kube/conditions.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { forEachLimit } from "../../../lib/kube/concurrency.ts";
import { keyOf } from "../../../lib/kube/informer.ts";
import { errorMessage, type Logger } from "../../../lib/log.ts";
import { removeAllObjects } from "../../../lib/objects.ts";
import type { FleetStores } from "../../broker/stores.ts";
import { WORKSPACE_FINALIZER, workspaceId } from "./desired.ts";
import type { FleetMetrics } from "./metrics.ts";
import type { PendingWrites } from "./pending.ts";
import type { WorkspacePlan } from "./plan.ts";
import type { FleetSandboxes, SandboxPod } from "./sandboxes.ts";
import { computeWorkspaceStatus, type WorkspaceObservation } from "./status.ts";

export interface WorkspaceDeps {
  client: KubeApi;
  writer: ChildWriter;
  sandboxes: FleetSandboxes;
  stores?: Pick<FleetStores, "configured" | "forFleet">;
  recorder: Recorder;
  log: Logger;
  now: () => Date;
  pending: PendingWrites;
  fleetMetrics?: FleetMetrics;
}

/** A workspace's fleet and sandbox, for the calls that reach them. */
export interface Home {
  fleet: SandboxFleet;
  pod: SandboxPod | undefined;
  port: number;
  /** The fleet has an object store. */
  stored: boolean;
}

/** Workspaces whose finalizer, sandbox call and status write are in flight at once. */
const WORKSPACE_CONCURRENCY = 16;

/** A time as the API writes it: whole seconds. */
export const apiTime = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export class FleetWorkspaces {
  private readonly deps: WorkspaceDeps;

  constructor(deps: WorkspaceDeps) {
    this.deps = deps;
  }

  /** A patch of the workspace, kept as pending; returns what to read from now on. */
  private async patch(ws: Workspace, what: string, body: unknown): Promise<Workspace> {
    const answer = await this.deps.writer.write("Workspace", what, () =>
      this.deps.client.mergePatch<KubeObject>(ws, body),
    );
    return this.deps.pending.wrote(ws, answer, this.deps.now().getTime());
  }

  async ensureFinalizer(ws: Workspace): Promise<Workspace> {
    const finalizers = ws.metadata.finalizers ?? [];
    if (finalizers.includes(WORKSPACE_FINALIZER)) return ws;
    return this.patch(ws, "finalizer", {
      metadata: {
        finalizers: [...finalizers, WORKSPACE_FINALIZER],
        resourceVersion: ws.metadata.resourceVersion,
      },
    });
  }

  /** Suspends the workspace for idleness: the annotation (its time) and an Event. */
  async markIdle(ws: Workspace, why: string): Promise<Workspace> {
    const marked = await this.patch(ws, "annotate", {
      metadata: {
        annotations: { [ANNOTATION_IDLE_SUSPENDED]: apiTime(this.deps.now()) },
        resourceVersion: ws.metadata.resourceVersion,
      },
    });
    this.deps.recorder.event(ws, "Normal", "IdleSuspended", `suspending: ${why}`);
    this.deps.log.info("suspending an idle workspace", { workspace: keyOf(ws), why });
    return marked;
  }

  /** Wakes a workspace suspended for idleness that a caller asked sandbox `pod` for. */
  async wake(ws: Workspace, pod: string): Promise<void> {
    await this.patch(ws, "annotate", {
      metadata: {
        annotations: { [ANNOTATION_IDLE_SUSPENDED]: null },
        resourceVersion: ws.metadata.resourceVersion,
      },
    });
    const why = `a call for it reached sandbox ${pod}'s API`;
    this.deps.recorder.event(ws, "Normal", "Woken", `waking: ${why}`);
    this.deps.log.info("waking a workspace suspended for idleness", { workspace: keyOf(ws), why });
  }

  /**
   * A suspended workspace leaves its sandbox (flushed first: it keeps the sandbox, and the
   * broker lets it flush, until then); its status keeps what the sandbox said of that flush.
   */
  async suspend(ws: Workspace, home: Home, idle: string | undefined): Promise<void> {
    let w = await this.ensureFinalizer(ws);
    if (idle) w = await this.markIdle(w, idle);
    const released = home.pod
      ? await this.deps.sandboxes.release(w, home.pod, home.port, home.stored)
      : undefined;
    if (released?.state === "flushing") return;
    const durability = released?.info?.durability;
    await this.writeStatus(w, { store: home.stored, ...(durability ? { durability } : {}) });
  }

  /**
   * A deleted workspace: a retained one is flushed and left in the store, another one's
   * stored files are removed (by the operator, with the store's credentials); it leaves its
   * sandbox; then Kubernetes may delete it.
   */
  async releaseFinalizer(ws: Workspace, home?: Home): Promise<void> {
    const finalizers = ws.metadata.finalizers ?? [];
    if (!finalizers.includes(WORKSPACE_FINALIZER)) return;
    const stored = home?.stored === true;
    const pod = home?.pod;
    const port = home?.port ?? 8080;
    let released: Released | undefined;
    if (stored && ws.spec.retain) released = await this.deps.sandboxes.release(ws, pod, port, true);
    if (released?.state === "flushing") return;
    if (!released) {
      await this.deps.sandboxes.remove(ws, pod, port);
      const store = stored ? await this.deps.stores?.forFleet(home.fleet) : undefined;
      if (store) {
        const removed = await removeAllObjects(store.objects.workspace(workspaceId(ws)));
        this.deps.log.info("removed a deleted workspace's stored files", {
          workspace: keyOf(ws),
          objects: removed,
        });
      }
    }
    await this.deps.writer.write("Workspace", "finalizer", () =>
      this.deps.client
        .mergePatch(ws, { metadata: { finalizers: finalizers.filter((f) => f !== WORKSPACE_FINALIZER) } })
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        }),
    );
    this.deps.pending.forget(keyOf(ws));
  }

  /** Makes sure the workspace exists on its sandbox (idempotent PUT) unless already confirmed there. */
  async confirm(
    ws: Workspace,
    pod: SandboxPod,
    home: Home,
    known: WorkspaceInfo | undefined,
  ): Promise<WorkspaceObservation> {
    const sameHome = ws.status?.sandboxPod === pod.metadata.name;
    const placement = {
      sandboxPod: pod.metadata.name!,
      endpoint: workspaceUrl(`http://${pod.status?.podIP ?? ""}:${home.port}`, workspaceId(ws)),
      placedAt: (sameHome && ws.status?.placedAt) || apiTime(this.deps.now()),
    };
    if (known)
      return { placement, confirmed: true, ...(known.durability ? { durability: known.durability } : {}) };
    // A new placement is recorded before the sandbox hears of it: the broker lets a sandbox
    // restore only a workspace whose status names it.
    if (!sameHome && home.stored)
      return { placement, confirmed: true, durability: { phase: "restoring", durable: false, dirty: false } };
    const target = this.deps.sandboxes.target(pod, home.port);
    if (!target) return { placement, sandboxError: "the sandbox pod has no address yet" };
    try {
      const info = await this.deps.sandboxes.put(target, ws, await this.sourceOf(ws));
      return { placement, confirmed: true, ...(info.durability ? { durability: info.durability } : {}) };
    } catch (err) {
      return { placement, sandboxError: errorMessage(err) };
    }
  }

  async writeStatus(ws: Workspace, o: WorkspaceObservation): Promise<void> {
    const now = this.deps.now();
    const status = computeWorkspaceStatus(ws, o, now);
    if (sameStatus(status, ws.status)) return;
    // Ready again (or for the first time): how long it went without a sandbox.
    const readyOf = (s: typeof status | undefined) => s?.conditions?.find((c) => c.type === "Ready");
    const before = readyOf(ws.status);
    if (readyOf(status)?.status === "True" && before?.status !== "True") {
      const since = before?.lastTransitionTime ?? ws.metadata.creationTimestamp;
      if (since) this.deps.fleetMetrics?.placed((now.getTime() - new Date(since).getTime()) / 1000);
    }
    const answer = await this.deps.writer.write("Workspace", "status", () =>
      this.deps.client.apply<KubeObject>(
        {
          apiVersion: ws.apiVersion,
          kind: ws.kind,
          metadata: { name: ws.metadata.name, namespace: ws.metadata.namespace },
          status,
        },
        "status",
      ),
    );
    // The next pass may run before the watch brings this write: a placement is never
    // decided twice from a stale cache.
    this.deps.pending.wrote(ws, answer, now.getTime());
  }

  /**
   * Carries out the workspace plan: finalizers, releases and suspensions a few workspaces at
   * a time (in order per workspace), then the status of those waiting for a stopping
   * sandbox, then placements confirmed on their sandboxes and the status of every other.
   */
  async carryOut(
    plan: WorkspacePlan,
    homeOf: (pod?: string) => Home,
    lost: ReadonlyMap<string, string>,
  ): Promise<void> {
    const chores: (() => Promise<unknown>)[] = [
      ...plan.deleting.map((w) => () => this.releaseFinalizer(w, homeOf(w.status?.sandboxPod))),
      ...plan.wake.map((w) => () => this.wake(w.ws, w.sandbox)),
      ...plan.release.map((r) => () => this.suspend(r.ws, homeOf(r.home), r.idle)),
      ...plan.leavingHome.map((w) => () => this.ensureFinalizer(w)),
      ...plan.onSandbox.map((o) => () => this.ensureFinalizer(o.ws)),
      ...plan.waiting.map((w) => () => this.ensureFinalizer(w.ws)),
    ];
    await forEachLimit(chores, WORKSPACE_CONCURRENCY, async (c) => void (await c()));
    const { stored } = homeOf();
    for (const w of plan.leavingHome) {
      const pod = w.status!.sandboxPod!;
      await this.writeStatus(w, {
        placement: {
          sandboxPod: pod,
          endpoint: w.status?.endpoint ?? "",
          placedAt: w.status?.placedAt ?? "",
        },
        store: stored,
        leaving: `sandbox ${pod} is stopping and flushing the workspace; it is placed again once that pod is gone`,
      });
    }
    const writes: (() => Promise<void>)[] = [
      ...plan.onSandbox.map((o) => async () => {
        const home = homeOf(o.sandbox);
        const gone = lost.get(keyOf(o.ws));
        const seen = await this.confirm(o.ws, home.pod!, home, o.known);
        await this.writeStatus(o.ws, { ...seen, store: stored, ...(gone ? { lost: gone } : {}) });
      }),
      ...plan.waiting.map((w) => () => this.writeStatus(w.ws, { waiting: w.why, store: stored })),
    ];
    await forEachLimit(writes, WORKSPACE_CONCURRENCY, (w) => w());
  }

  /** The git source of a workspace with its credentials (from its Secret), for the sandbox. */
  private async sourceOf(ws: Workspace): Promise<CreateWorkspaceRequest["source"]> {
    const git = ws.spec.source?.git;
    if (!git) return undefined;
    let credentials: { username?: string; password?: string; token?: string } | undefined;
    const ref = git.credentialsSecretRef?.name;
    if (ref) {
      const secret = await this.deps.client.get<KubeObject & { data?: Record<string, string> }>(
        "v1",
        "Secret",
        ws.metadata.namespace,
        ref,
      );
      credentials = {};
      for (const k of ["username", "password", "token"] as const) {
        const v = secret.data?.[k] ? Buffer.from(secret.data[k], "base64").toString("utf8").trim() : "";
        if (v) credentials[k] = v;
      }
    }
    return { git: { url: git.url, ref: git.ref, ...(credentials ? { credentials } : {}) } };
  }
}
