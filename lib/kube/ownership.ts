// Whose object is whose: the controller owner reference a child carries, the test of it, and
// the error a controller raises instead of touching an object of a child's name that its
// owner does not control (someone else's, or an earlier incarnation's).
import type { KubeObject } from "./client.ts";

type OwnerReference = NonNullable<KubeObject["metadata"]["ownerReferences"]>[number];

/** How long a controller waits before looking again at a name held by someone else's object. */
export const NAME_CONFLICT_RECHECK_MS = 30_000;

/** The controller owner reference to `owner`, so garbage collection removes the child with it. */
export function controllerRef(owner: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; uid?: string };
}): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when an owner reference of `obj` with controller=true names `uid`. */
export const controlledBy = (obj: Pick<KubeObject, "metadata">, uid: string | undefined): boolean =>
  uid !== undefined &&
  (obj.metadata.ownerReferences?.some((r) => r.uid === uid && r.controller === true) ?? false);

/** The owner reference with controller=true, if any. */
export const controllerOf = (obj: Pick<KubeObject, "metadata">): OwnerReference | undefined =>
  obj.metadata.ownerReferences?.find((r) => r.controller === true);

/**
 * The object of a child's name exists and is not controlled by the child's owner: someone
 * else made it (or another agentry object holds the name). agentry leaves it alone.
 */
export class NameConflictError extends Error {
  readonly kind: string;
  readonly objectName: string;
  constructor(child: Pick<KubeObject, "kind" | "metadata">, existing: Pick<KubeObject, "metadata">) {
    const owner = controllerOf(child);
    const holder = controllerOf(existing);
    const name = child.metadata.name ?? "";
    const ownerText = owner ? `${owner.kind} ${owner.name}` : "this object";
    const earlier = holder && owner && holder.kind === owner.kind && holder.name === owner.name;
    super(
      `${child.kind} ${name} already exists and is not managed by ${ownerText}` +
        (earlier
          ? ` (it belongs to an earlier ${holder.kind} ${holder.name} that was deleted; garbage collection removes it)`
          : holder
            ? ` (it belongs to ${holder.kind} ${holder.name})`
            : "") +
        `; agentry never takes over an object it did not create: remove or rename that ${child.kind}, ` +
        `or give the ${owner?.kind ?? "object"} another name`,
    );
    this.name = "NameConflictError";
    this.kind = child.kind;
    this.objectName = name;
  }
}

export const isNameConflict = (err: unknown): err is NameConflictError => err instanceof NameConflictError;
