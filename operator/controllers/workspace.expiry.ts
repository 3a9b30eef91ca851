// The expiry controller, one key per Workspace: deletes a workspace once it has outlived
// spec.ttlSecondsAfterCreation or spec.expireAt (the earlier), with an Expired Event; the
// fleet controller's finalizer then removes its stored files unless spec.retain. Until then
// it looks again when the workspace is due (capped, so a far date is re-read now and then).
import type { KubeClient } from "../../lib/kube/client.ts";
import type { ReconcileResult } from "../../lib/kube/controller.ts";
import type { Watches, WatchingReconciler } from "../../lib/kube/watches.ts";
import { countWrite } from "../../lib/kube/children.ts";
import type { Recorder } from "../../lib/kube/events.ts";
import type { Metrics } from "../../lib/kube/metrics.ts";
import { keyOf, splitKey } from "../../lib/kube/informer.ts";
import type { TypedInformer } from "../../lib/kube/typed.ts";
import type { Logger } from "../../lib/log.ts";
import { expiryVerdict } from "./workspace.lifetime.ts";

export interface ExpiryControllerDeps {
  client: Pick<KubeClient, "delete">;
  informers: { workspaces: TypedInformer<"Workspace"> };
  recorder: Recorder;
  /** agentry_writes_total counts the deletes. */
  metrics: Pick<Metrics, "writes">;
  log: Logger;
  now?: () => Date;
}

/** Longest wait before a workspace's expiry is looked at again (timers are not kept for weeks). */
export const EXPIRY_RECHECK_MAX_MS = 3_600_000;

export class WorkspaceExpiryReconciler implements WatchingReconciler {
  readonly name = "workspace-expiry";
  private readonly deps: ExpiryControllerDeps;
  private readonly now: () => Date;

  constructor(deps: ExpiryControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Each Workspace on creation and spec change; all of them at a resync. */
  readonly watches: Watches = {
    register: (controller) => {
      const { workspaces } = this.deps.informers;
      workspaces.on("add", (o) => controller.enqueue(keyOf(o)));
      workspaces.on("update", (o, old) => {
        if (!old || old.metadata.generation !== o.metadata.generation) controller.enqueue(keyOf(o));
      });
    },
    resync: (controller) => {
      for (const w of this.deps.informers.workspaces.list()) controller.enqueue(keyOf(w));
    },
  };

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    // Absent, being deleted, or not parsing (reported by the informer): nothing to do.
    const ws = this.deps.informers.workspaces.get(namespace, name);
    if (!ws || ws.metadata.deletionTimestamp) return;
    const verdict = expiryVerdict(ws, this.now());
    if (!verdict.expired)
      return verdict.recheckInMs === undefined
        ? undefined
        : { requeueAfterMs: Math.min(verdict.recheckInMs, EXPIRY_RECHECK_MAX_MS) };
    // Only this incarnation: a workspace created again under the name has its own clock.
    const deleted = await this.deps.client.delete(ws, { uid: ws.metadata.uid });
    if (!deleted) return;
    countWrite(this.deps.metrics, this.name, "Workspace", "delete");
    this.deps.recorder.event(ws, "Normal", "Expired", verdict.message);
    this.deps.log.info("deleted an expired workspace", { workspace: key, why: verdict.message });
  }
}
