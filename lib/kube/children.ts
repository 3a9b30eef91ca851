// Writing a controller's child objects: apply only when the spec hash differs, delete a
// precise incarnation, write status only when it changed, and count every write.
import type { KubeClient, KubeObject } from "./client.ts";
import { sameStatus } from "./conditions.ts";
import { shortHash } from "./names.ts";
import type { Metrics } from "./metrics.ts";

export const ANNOTATION_SPEC_HASH = "agentry.dev/spec-hash";

/** Adds the spec-hash annotation (the hash of everything else) used to skip unchanged writes. */
export function withSpecHash(obj: KubeObject): KubeObject {
  const hash = shortHash(obj);
  obj.metadata.annotations = { ...obj.metadata.annotations, [ANNOTATION_SPEC_HASH]: hash };
  return obj;
}

/** The controller owner reference to `owner`, so garbage collection removes the child with it. */
export function controllerRef(owner: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; uid?: string };
}): NonNullable<KubeObject["metadata"]["ownerReferences"]>[number] {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export const ownedBy = (obj: KubeObject, uid: string | undefined): boolean =>
  uid !== undefined && (obj.metadata.ownerReferences?.some((r) => r.uid === uid) ?? false);

export class ChildWriter {
  private readonly client: KubeClient;
  private readonly metrics: Metrics;
  private readonly controller: string;

  constructor(client: KubeClient, metrics: Metrics, controller: string) {
    this.client = client;
    this.metrics = metrics;
    this.controller = controller;
  }

  /** Applies `desired` unless `observed` already carries its spec hash and the same owner. */
  async ensure(
    ownerUid: string | undefined,
    desired: KubeObject,
    observed: KubeObject | undefined,
  ): Promise<boolean> {
    const hash = desired.metadata.annotations?.[ANNOTATION_SPEC_HASH];
    if (
      observed &&
      observed.metadata.annotations?.[ANNOTATION_SPEC_HASH] === hash &&
      ownedBy(observed, ownerUid)
    )
      return false;
    await this.write(desired.kind, "apply", () => this.client.apply(desired));
    return true;
  }

  /** Creates `obj`; false when it already exists. */
  async create(obj: KubeObject): Promise<boolean> {
    return this.write(obj.kind, "create", () => this.client.create(obj)).then(
      () => true,
      (err: unknown) => {
        if ((err as { status?: number }).status === 409) return false;
        throw err;
      },
    );
  }

  /** Deletes this incarnation of `obj` (uid precondition), its dependents in the background. */
  async remove(obj: KubeObject): Promise<void> {
    await this.write(obj.kind, "delete", () =>
      this.client.delete(obj, {
        ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
        propagation: "Background",
      }),
    );
  }

  /** Writes `status` by server-side apply to the status subresource, unless it equals `current`. */
  async writeStatus(
    obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">,
    status: unknown,
    current: unknown,
  ): Promise<void> {
    if (sameStatus(status, current)) return;
    await this.write(obj.kind, "status", () =>
      this.client.apply(
        {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
          status,
        },
        "status",
      ),
    );
  }

  async write<T>(kind: string, verb: string, fn: () => Promise<T>): Promise<T> {
    this.metrics.writes.inc({ controller: this.controller, kind, verb });
    return fn();
  }
}
