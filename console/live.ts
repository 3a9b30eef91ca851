// Live lists: the objects of one kind in one namespace, kept current from the gateway's event
// stream (GET /v1/watch/..., Server-Sent Events through the client's watch()). The stream is
// opened first and listed once it is open, so no change falls between the two; a dropped
// stream resumes with Last-Event-ID, `reset` lists again, `revoked` stops with the reason.
// Pages share one list per namespace and kind while any of them shows it.
import { useEffect, useState } from "preact/hooks";
import { watch } from "../clients/typescript/index.ts";
import { api, call, checked, describe, token } from "./session.ts";

export interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; creationTimestamp?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export type Plural = "agentruntimes" | "pipelines" | "sandboxfleets" | "workspaces";

export interface LiveState {
  items: Obj[];
  loaded: boolean;
  error?: string;
}

/** Samples of a fleet's size over the last minutes, taken from its events. */
export interface Sample {
  t: number;
  ready: number;
  desired: number;
  workspaces: number;
}
const HISTORY_MS = 10 * 60_000;
const history = new Map<string, Sample[]>();

export function fleetHistory(namespace: string, name: string): Sample[] {
  return history.get(`${namespace}/${name}`) ?? [];
}

function sample(o: Obj): void {
  const key = `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  const s = (o.status ?? {}) as { readyReplicas?: number; desiredReplicas?: number; workspaces?: number };
  const list = history.get(key) ?? [];
  const now = Date.now();
  list.push({
    t: now,
    ready: s.readyReplicas ?? 0,
    desired: s.desiredReplicas ?? 0,
    workspaces: s.workspaces ?? 0,
  });
  while (list.length > 1 && list[0]!.t < now - HISTORY_MS) list.shift();
  history.set(key, list);
}

const rv = (o: Obj) => Number(o.metadata.resourceVersion ?? 0);

class LiveList {
  private items = new Map<string, Obj>();
  private listeners = new Set<(s: LiveState) => void>();
  private abort = new AbortController();
  private state: LiveState = { items: [], loaded: false };
  private lastEventId: string | undefined;

  readonly namespace: string;
  readonly plural: Plural;

  constructor(namespace: string, plural: Plural) {
    this.namespace = namespace;
    this.plural = plural;
    void this.run();
  }

  subscribe(l: (s: LiveState) => void): () => void {
    this.listeners.add(l);
    l(this.state);
    return () => void this.listeners.delete(l);
  }

  get watched(): boolean {
    return this.listeners.size > 0;
  }

  stop(): void {
    this.abort.abort();
  }

  private emit(patch: Partial<LiveState>): void {
    const items = [...this.items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    this.state = { ...this.state, items, ...patch };
    for (const l of this.listeners) l(this.state);
  }

  private apply(type: string, o: Obj): void {
    const have = this.items.get(o.metadata.name);
    if (have && rv(o) && rv(have) > rv(o)) return; // older than what the list gave
    if (type === "DELETED") this.items.delete(o.metadata.name);
    else this.items.set(o.metadata.name, o);
    if (this.plural === "sandboxfleets" && type !== "DELETED") sample(o);
  }

  private async list(): Promise<void> {
    const items: Obj[] = [];
    let cont: string | undefined;
    do {
      const page = (await call(
        api().GET(`/v1/namespaces/{namespace}/${this.plural}` as "/v1/namespaces/{namespace}/workspaces", {
          params: {
            path: { namespace: this.namespace },
            query: { limit: 500, ...(cont ? { continue: cont } : {}) },
          },
        }),
      )) as unknown as { items?: Obj[]; metadata?: { continue?: string } };
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    this.items = new Map(items.map((o) => [o.metadata.name, o]));
    if (this.plural === "sandboxfleets") items.forEach(sample);
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.abort.signal.aborted) {
      try {
        const events = watch({
          baseUrl: location.origin,
          token: token(),
          namespace: this.namespace,
          plural: this.plural,
          signal: this.abort.signal,
          ...(this.lastEventId ? { lastEventId: this.lastEventId } : {}),
          onOpen: async () => {
            if (!this.lastEventId) {
              await this.list();
              this.emit({ loaded: true, error: undefined });
            }
          },
        });
        for await (const e of events) {
          backoff = 500;
          if (e.id) this.lastEventId = e.id;
          if (e.type === "reset") {
            this.lastEventId = undefined;
            await this.list();
          } else if (e.type === "revoked") {
            this.emit({ error: `live updates stopped: ${describeData(e.data)}` });
            return;
          } else if (e.type === "ADDED" || e.type === "MODIFIED" || e.type === "DELETED") {
            this.apply(e.type, e.data as Obj);
          } else continue;
          this.emit({ loaded: true, error: undefined });
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const status = (err as { status?: number }).status;
        if (status === 401 || status === 403) {
          checked(Object.assign(err as object, { status }));
          this.emit({ loaded: true, error: describe(err) });
          if (status === 401) return;
        } else this.emit({ error: `reconnecting to live updates: ${describe(err)}` });
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10_000);
    }
  }
}

function describeData(d: unknown): string {
  if (typeof d === "string") return d;
  const r = (d as { reason?: string } | null)?.reason;
  return r ?? JSON.stringify(d);
}

const lists = new Map<string, LiveList>();

/** Stops every live list (on sign-out). */
export function stopAll(): void {
  for (const l of lists.values()) l.stop();
  lists.clear();
}

/** The live objects of `plural` in `namespace`, re-rendering on every change. */
export function useLive(namespace: string | undefined, plural: Plural): LiveState {
  const [state, setState] = useState<LiveState>({ items: [], loaded: false });
  useEffect(() => {
    if (!namespace) return;
    const key = `${namespace}/${plural}`;
    let list = lists.get(key);
    if (!list) {
      list = new LiveList(namespace, plural);
      lists.set(key, list);
    }
    const l = list;
    const unsubscribe = l.subscribe(setState);
    return () => {
      unsubscribe();
      // A list no page shows for a while closes its stream (the gateway caps streams per
      // caller); moving between pages of one namespace keeps it.
      setTimeout(() => {
        if (!l.watched && lists.get(key) === l) {
          l.stop();
          lists.delete(key);
        }
      }, 5000);
    };
  }, [namespace, plural]);
  return state;
}
