// Watches Roles, RoleBindings, ClusterRoles and ClusterRoleBindings (their metadata only:
// the gateway needs to know that something changed, not what) and tells the access cache to
// forget what may have changed: a Role or RoleBinding the answers about its namespace, a
// cluster-wide one every answer. A watch that has to start over (410 Gone, an error) forgets
// every answer too, since changes may have been missed meanwhile.
import type { KubeClient } from "../../lib/kube/client.ts";
import { listAndWatch } from "../../lib/kube/watch.ts";
import type { Logger } from "../../lib/log.ts";

const RBAC = "rbac.authorization.k8s.io/v1";
const KINDS = [
  { kind: "Role", namespaced: true },
  { kind: "RoleBinding", namespaced: true },
  { kind: "ClusterRole", namespaced: false },
  { kind: "ClusterRoleBinding", namespaced: false },
] as const;
const METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

export class RbacWatch {
  private readonly stopper = new AbortController();
  private running: Promise<unknown> | undefined;
  private readonly changed: (namespace: string | undefined) => void;

  /** `changed(namespace)`: RBAC in that namespace changed; undefined: anywhere. */
  constructor(changed: (namespace: string | undefined) => void) {
    this.changed = changed;
  }

  start(client: KubeClient, log: Logger): void {
    this.running ??= Promise.all(
      KINDS.map(({ kind, namespaced }) =>
        listAndWatch(
          client,
          {
            path: client.collectionPath(RBAC, kind),
            accept: METADATA_ONLY,
            signal: this.stopper.signal,
            log: log.child({ rbacWatch: kind }),
          },
          {
            // Only where to watch from: the changes from now on are what matter.
            list: async () => {
              const list = await client.request<{ metadata: { resourceVersion?: string } }>(
                "GET",
                client.collectionPath(RBAC, kind),
                { query: { limit: 1 }, accept: METADATA_LIST },
              );
              this.changed(undefined);
              return list.metadata.resourceVersion ?? "";
            },
            event: (e) => {
              if (e.type === "BOOKMARK") return;
              this.changed(namespaced ? (e.object.metadata?.namespace ?? undefined) : undefined);
            },
          },
        ),
      ),
    );
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }
}
