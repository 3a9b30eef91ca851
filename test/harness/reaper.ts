// The last step of a pod's deletion, as a kubelet takes it: once a deleted pod's containers
// are gone, the kubelet deletes the pod for good (grace period 0) with the pod's uid as a
// precondition, so a late or repeated delete can never remove a new pod of the same name.
// kwok (v0.8.0) deletes by name alone: a delete it played late for a terminating pod
// removed the new pod an operator had made under the same name in the meantime (a spec
// change that replaces a Pod). So the fake kubelets' plain deletions are done here, and kwok
// keeps only the graceful ones of pods backed by processes (kwok-stages.yaml), whose
// backends remove them first.
import { KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { Informer } from "../../lib/kube/informer.ts";
import type { KubeConfig } from "../../lib/kube/kubeconfig.ts";
import { silentLogger } from "../../lib/log.ts";

/** Left to kwok (its graceful stage) and the pod backends: see kwok-stages.yaml. */
const GRACEFUL = "kwok.agentry.dev/graceful";
const RETRY_MS = 500;

/** What the reaper keeps of a pod: who it is and whether it is being deleted. */
const view = (o: KubeObject): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    uid: o.metadata.uid,
    resourceVersion: o.metadata.resourceVersion,
    ...(o.metadata.deletionTimestamp ? { deletionTimestamp: o.metadata.deletionTimestamp } : {}),
    ...(o.metadata.annotations?.[GRACEFUL] !== undefined ? { annotations: { [GRACEFUL]: "true" } } : {}),
  },
});

/** Whether the reaper removes this pod now: deleted, not graceful, and still the same pod in the cache. */
export const reapable = (o: KubeObject | undefined): boolean =>
  o !== undefined &&
  o.metadata.deletionTimestamp !== undefined &&
  o.metadata.annotations?.[GRACEFUL] === undefined;

export class PodReaper {
  private readonly client: KubeClient;
  private readonly informer: Informer<KubeObject>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(kc: KubeConfig) {
    this.client = new KubeClient(kc, { qps: 1e6, burst: 1e6, userAgent: "agentry-test-kubelet" });
    this.informer = new Informer<KubeObject>(
      this.client,
      { apiVersion: "v1", kind: "Pod", transform: view },
      silentLogger(),
    );
    this.informer.on("add", (o) => this.reap(o));
    this.informer.on("update", (o) => this.reap(o));
  }

  async start(): Promise<void> {
    void this.informer.start();
    await this.informer.waitForSync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await this.informer.stop();
  }

  private reap(pod: KubeObject): void {
    if (this.stopped || !reapable(pod)) return;
    // Gone already (404), or another pod of that name now (409: the uid precondition): done.
    this.client.delete(pod, { uid: pod.metadata.uid, gracePeriodSeconds: 0 }).catch(() => {
      // The apiserver did not answer (restarted by a chaos test, say): again while the cache
      // still holds this very pod, deleted.
      const t = setTimeout(() => {
        this.timers.delete(t);
        const now = this.informer.get(pod.metadata.namespace, pod.metadata.name ?? "");
        if (now && now.metadata.uid === pod.metadata.uid) this.reap(now);
      }, RETRY_MS);
      this.timers.add(t);
    });
  }
}
