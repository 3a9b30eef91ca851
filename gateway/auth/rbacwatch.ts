// Watches Roles, RoleBindings, ClusterRoles and ClusterRoleBindings (their metadata only:
// the gateway needs to know that something changed, not what) with lib/kube's informer and
// tells the access cache to forget what may have changed: a Role or RoleBinding the answers
// about its namespace, a cluster-wide one every answer. Each completed list (the first, and
// one after 410 Gone) forgets every answer too.
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { Informer } from "../../lib/kube/informer.ts";
import type { Logger } from "../../lib/log.ts";

const RBAC = "rbac.authorization.k8s.io/v1";
const KINDS = [
  { kind: "Role", namespaced: true },
  { kind: "RoleBinding", namespaced: true },
  { kind: "ClusterRole", namespaced: false },
  { kind: "ClusterRoleBinding", namespaced: false },
] as const;

/** What is kept of each RBAC object: enough to tell a change (its resourceVersion) and where. */
const identity = (o: KubeObject): KubeObject => ({
  apiVersion: RBAC,
  kind: o.kind,
  metadata: {
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    resourceVersion: o.metadata.resourceVersion,
  },
});

export class RbacWatch {
  private informers: Informer<KubeObject>[] = [];
  private readonly changed: (namespace: string | undefined) => void;

  /** `changed(namespace)`: RBAC in that namespace changed; undefined: anywhere. */
  constructor(changed: (namespace: string | undefined) => void) {
    this.changed = changed;
  }

  start(client: KubeClient, log: Logger): void {
    if (this.informers.length > 0) return;
    this.informers = KINDS.map(({ kind, namespaced }) => {
      const informer = new Informer<KubeObject>(
        client,
        { apiVersion: RBAC, kind, metadataOnly: true, transform: identity },
        log.child({ rbacWatch: kind }),
      );
      const changed = (o: KubeObject) => this.changed(namespaced ? o.metadata.namespace : undefined);
      informer.on("add", changed);
      informer.on("update", changed);
      informer.on("delete", changed);
      informer.onProgress((_rv, listed) => {
        if (listed) this.changed(undefined);
      });
      void informer.start();
      return informer;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
