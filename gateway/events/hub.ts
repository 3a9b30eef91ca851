// Runs the Kubernetes watches behind the event streams: one per kind+namespace, started
// when a client first asks for it and kept while clients remain (plus a linger period).
// With several replicas only the bus's lease holder watches; the others renew their claim
// so one of them takes over (from the last published resourceVersion) if the holder dies.
import type { KubeClient, KubeObject } from "../../lib/kube/client.ts";
import { Watch } from "../../lib/kube/watch.ts";
import type { Logger } from "../../lib/log.ts";
import type { EventBus } from "./bus.ts";
import { missedEvents } from "./catchup.ts";
import { errorMessage } from "../../lib/log.ts";

export interface StreamRef {
  apiVersion: string;
  kind: string;
  namespace: string;
}

export const streamName = (ref: StreamRef): string => `${ref.kind}/${ref.namespace}`;

interface Running {
  ref: StreamRef;
  users: number;
  lingerUntil: number;
  watching: AbortController | undefined;
  /**
   * Where the stream stands: every change up to this resourceVersion is on the bus (the
   * last published event, or a bookmark/list position after it). A watch resumes here.
   */
  published: string | undefined;
  /** Names of the objects whose existence the bus has told (for DELETED events after a gap). */
  known: Set<string>;
  /** Publishes in watch order, one at a time; a failure stops the rest until the stream resumes. */
  chain: Promise<void>;
  /** The watch expired (410 Gone): the next list must publish what was missed from `published`. */
  expired: boolean;
}

export interface HubOptions {
  leaseMs?: number;
  lingerMs?: number;
}

export class EventHub {
  private readonly client: KubeClient;
  private readonly bus: EventBus;
  private readonly log: Logger;
  private readonly streams = new Map<string, Running>();
  private readonly leaseMs: number;
  private readonly lingerMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(client: KubeClient, bus: EventBus, log: Logger, options: HubOptions = {}) {
    this.client = client;
    this.bus = bus;
    this.log = log.child({ component: "events" });
    this.leaseMs = options.leaseMs ?? 6000;
    this.lingerMs = options.lingerMs ?? 60_000;
  }

  get eventBus(): EventBus {
    return this.bus;
  }

  /** Registers a client of the stream; returns the function to call when it leaves. */
  async acquire(ref: StreamRef): Promise<() => void> {
    const name = streamName(ref);
    let s = this.streams.get(name);
    if (!s) {
      s = {
        ref,
        users: 0,
        lingerUntil: 0,
        watching: undefined,
        published: undefined,
        known: new Set(),
        chain: Promise.resolve(),
        expired: false,
      };
      this.streams.set(name, s);
    }
    s.users++;
    this.timer ??= setInterval(() => void this.tick(), Math.max(200, this.leaseMs / 3));
    this.timer.unref();
    await this.step(name, s);
    const running = s;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      running.users--;
      if (running.users === 0) running.lingerUntil = Date.now() + this.lingerMs;
    };
  }

  private async tick(): Promise<void> {
    for (const [name, s] of this.streams)
      await this.step(name, s).catch((err: unknown) => this.warn(name, err));
  }

  private warn(name: string, err: unknown): void {
    this.log.warn("event stream step failed", {
      stream: name,
      error: errorMessage(err),
    });
  }

  private async step(name: string, s: Running): Promise<void> {
    if (this.closed) return;
    if (s.users === 0 && Date.now() > s.lingerUntil) {
      this.stopWatch(s);
      this.streams.delete(name);
      await this.bus.release(name);
      return;
    }
    const leader = await this.bus.lead(name, this.leaseMs);
    if (leader && !s.watching) await this.startWatch(name, s);
    if (!leader && s.watching) this.stopWatch(s);
  }

  private stopWatch(s: Running): void {
    s.watching?.abort();
    s.watching = undefined;
  }

  private async startWatch(name: string, s: Running, fresh = false): Promise<void> {
    const controller = new AbortController();
    s.watching = controller; // claimed before any await: one watch per stream
    try {
      await this.runWatch(name, s, controller, fresh);
    } catch (err) {
      if (s.watching === controller) s.watching = undefined; // the next tick retries
      throw err;
    }
  }

  private async runWatch(
    name: string,
    s: Running,
    controller: AbortController,
    fresh: boolean,
  ): Promise<void> {
    const path = this.client.collectionPath(s.ref.apiVersion, s.ref.kind, s.ref.namespace);
    await s.chain; // events of the last watch still being published move `published`
    let rv = fresh ? undefined : (s.published ?? (await this.bus.position(name)));
    if (!rv) rv = await this.relist(name, s);
    if (s.watching !== controller) return;
    s.published = rv;
    let gone = false;
    let received = false; // anything but an error: the watch got going
    let failed = false;
    // Publishing is ordered and stops at the first failure (the bus is down): the watch is
    // stopped and, once the bus answers again, resumed from the last event it took, so
    // nothing is lost and nothing is published out of order.
    const enqueue = (step: () => Promise<void>) => {
      s.chain = s.chain.then(async () => {
        if (failed) return;
        try {
          await step();
        } catch (err) {
          failed = true;
          this.warn(name, err);
          this.log.warn("event bus unavailable; the stream resumes from its last published event", {
            stream: name,
            resourceVersion: s.published,
          });
          if (s.watching === controller) this.stopWatch(s);
        }
      });
    };
    const watch = new Watch(this.client);
    const req = await watch.watch(
      path,
      { resourceVersion: rv, allowWatchBookmarks: true },
      (type: string, obj: KubeObject & { code?: number }) => {
        if (s.watching !== controller) return;
        if (type === "ERROR") {
          if (obj.code === 410) gone = true;
          return;
        }
        received = true;
        const objRv = obj.metadata?.resourceVersion;
        if (type === "BOOKMARK") {
          if (objRv) enqueue(() => Promise.resolve(void (s.published = objRv)));
          return;
        }
        const objName = obj.metadata.name ?? "";
        delete obj.metadata.managedFields;
        obj.apiVersion ??= s.ref.apiVersion;
        obj.kind ??= s.ref.kind;
        const data = JSON.stringify(obj);
        enqueue(async () => {
          await this.bus.publish(name, type, data, objRv ?? "");
          if (type === "DELETED") s.known.delete(objName);
          else s.known.add(objName);
          if (objRv) s.published = objRv;
        });
      },
      (err: unknown) => {
        if (s.watching !== controller) return; // stopped on purpose
        s.watching = undefined;
        if (err && !(err instanceof Error && err.name === "AbortError")) this.warn(name, err);
        if (gone) s.expired = true;
        // The watch ended (timeout, apiserver restart, 410 Gone): resume now. One that never
        // got going (apiserver down or starting) is left to the next tick, not retried in a
        // tight loop.
        if (!this.closed && (gone || received) && (s.users > 0 || Date.now() < s.lingerUntil))
          this.startWatch(name, s, gone).catch((e: unknown) => this.warn(name, e));
      },
    );
    if (s.watching !== controller) req.abort();
    else controller.signal.addEventListener("abort", () => req.abort());
  }

  /**
   * Lists the stream's objects (every page) to learn which exist and where to watch from;
   * after 410 Gone, first publishes what the expired watch missed (see catchup.ts).
   */
  private async relist(name: string, s: Running): Promise<string | undefined> {
    const { apiVersion, kind, namespace } = s.ref;
    const items: KubeObject[] = [];
    let rv: string | undefined;
    let next: string | undefined;
    do {
      const page = await this.client.list(apiVersion, kind, namespace, { limit: 500, continue: next });
      items.push(...page.items);
      rv ??= page.metadata.resourceVersion;
      next = page.metadata.continue;
    } while (next);
    if (s.expired && s.published && rv) {
      // A publish failing half-way throws: the next attempt lists and publishes again (an
      // event may then be published twice, never lost).
      const missed = missedEvents(s.published, s.known, items, { ...s.ref, resourceVersion: rv });
      if (missed.length)
        this.log.info("caught up after an expired watch", { stream: name, events: missed.length });
      for (const e of missed) {
        delete e.object.metadata.managedFields;
        await this.bus.publish(name, e.type, JSON.stringify(e.object), e.resourceVersion);
      }
    }
    s.expired = false;
    s.known = new Set(items.map((o) => o.metadata.name ?? ""));
    return rv;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const [name, s] of this.streams) {
      this.stopWatch(s);
      await this.bus.release(name).catch(() => undefined);
    }
    this.streams.clear();
  }
}
