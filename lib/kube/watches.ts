// What a controller watches, as one value its reconciler hands to the Controller: which
// informer events queue which keys (register) and which keys a full resync queues (resync).
// The pieces every controller of ours repeats are here: an object's own events filtered to
// the changes that need a pass, and a child's events queueing the owner its label names.
import type { KubeObject } from "./client.ts";
import { Controller, type ControllerOptions, type Reconciler } from "./controller.ts";
import { keyOf, type Handler, type SharedInformer } from "./informer.ts";
import { Lane } from "./queue.ts";

type Meta = Pick<KubeObject, "metadata">;
type Events<T> = Pick<SharedInformer<T & KubeObject>, "on">;

export interface Watches {
  /** Wires informer events to the controller's queue. */
  register(controller: Controller): void;
  /** Queues every key the controller looks after (a full resync). */
  resync(controller: Controller): void;
}

/** A reconciler together with what it watches. */
export interface WatchingReconciler extends Reconciler {
  readonly watches: Watches;
}

/** Calls `handler` on every add, update and delete of these informers. */
export function onEvery<T>(informers: Iterable<Events<T>>, handler: Handler<T>): void {
  for (const inf of informers) {
    inf.on("add", handler);
    inf.on("update", handler);
    inf.on("delete", handler);
  }
}

/**
 * Queues an object of ours on add and delete, and on update when `changed(o, old)` says the
 * change needs a pass (by default: its spec, as its generation tells, or its deletion); our
 * own status writes change neither and so queue nothing.
 */
export function watchOwn<T extends Meta>(
  informer: Events<T>,
  controller: Pick<Controller, "enqueue">,
  changed: (o: T, old: T) => boolean = specOrDeletion,
): void {
  const enqueue = (o: T) => controller.enqueue(keyOf(o));
  informer.on("add", enqueue);
  informer.on("update", (o, old) => {
    if (!old || changed(o, old)) enqueue(o);
  });
  informer.on("delete", enqueue);
}

/** A new generation (a spec change) or a change of the deletion timestamp. */
export const specOrDeletion = (o: Meta, old: Meta): boolean =>
  old.metadata.generation !== o.metadata.generation ||
  old.metadata.deletionTimestamp !== o.metadata.deletionTimestamp;

/** `<namespace>/<owner>` of the owner a child names by `label`, if it names one. */
export function ownerKey(o: Meta, label: string): string | undefined {
  const owner = o.metadata.labels?.[label];
  return owner && o.metadata.namespace ? `${o.metadata.namespace}/${owner}` : undefined;
}

/**
 * Queues the owner a child names by `label` at each of the child's events, in `lane`
 * (Lane.Children by default: a child's event is work under way).
 */
export function watchChildren(
  informers: Iterable<Events<KubeObject>>,
  controller: Pick<Controller, "enqueue">,
  label: string,
  lane: Lane = Lane.Children,
): void {
  onEvery(informers, (o) => {
    const key = ownerKey(o, label);
    if (key) controller.enqueue(key, lane);
  });
}

/** Queues every owner the cached children name by `label` (a resync's share of them). */
export function resyncChildren(
  informers: Iterable<Pick<SharedInformer<KubeObject>, "list">>,
  controller: Pick<Controller, "enqueue">,
  label: string,
): void {
  for (const inf of informers)
    for (const o of inf.list()) {
      const key = ownerKey(o, label);
      if (key) controller.enqueue(key);
    }
}

/**
 * One Controller per reconciler with its watches registered, and the full resync of them
 * all (each controller's keys queued behind its other work, Lane.Resync).
 */
export function controllersFor(
  reconcilers: readonly WatchingReconciler[],
  options: ControllerOptions,
): { controllers: Controller[]; controllerOf: (r: WatchingReconciler) => Controller; resyncAll: () => void } {
  const controllers = reconcilers.map((r) => {
    const c = new Controller(r, options);
    r.watches.register(c);
    return c;
  });
  const controllerOf = (r: WatchingReconciler) => controllers[reconcilers.indexOf(r)]!;
  return {
    controllers,
    controllerOf,
    resyncAll: () =>
      reconcilers.forEach((r, i) => {
        const c = controllers[i]!;
        c.resync(() => r.watches.resync(c));
      }),
  };
}
