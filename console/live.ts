// Live data: what the console shows of one kind in one namespace, kept current from the
// gateway's event stream (GET /v1/watch/..., Server-Sent Events through the client's watch()).
// Nothing here reads a whole list: a list page holds one page of the gateway's list (`limit`
// and `continue`, paged on the server), an object's page holds that object. Both read again
// whenever the stream (re)opens without resuming, or says `reset`, so no change falls between
// a read and the stream; a dropped stream resumes with Last-Event-ID, `revoked` stops it with
// the reason. Pages share one stream per namespace and kind while any of them shows it.
import { useEffect, useRef, useState } from "preact/hooks";
import { ProblemError, watch } from "../clients/typescript/index.ts";
import { api, call, checked, describe, token } from "./session.ts";

export interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; creationTimestamp?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export type Plural = "agentruntimes" | "pipelines" | "sandboxfleets" | "workspaces";
type Change = "ADDED" | "MODIFIED" | "DELETED";

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
/** `next` is not older than `have` (what a read or an earlier event gave). */
const newer = (next: Obj, have: Obj | undefined) => !have || !rv(next) || rv(next) >= rv(have);

interface Listener {
  /** Read again: the stream opened without resuming, said reset, or cannot be opened at all. */
  sync(): void;
  change(type: Change, o: Obj): void;
  /** Why live updates are not flowing now (undefined: they are). */
  trouble(message: string | undefined): void;
}

class Stream {
  private readonly listeners = new Set<Listener>();
  private readonly abort = new AbortController();
  private lastEventId: string | undefined;
  /** The stream opened once, or failed before it did (then readers read without it). */
  private settled = false;

  readonly namespace: string;
  readonly plural: Plural;

  constructor(namespace: string, plural: Plural) {
    this.namespace = namespace;
    this.plural = plural;
    void this.run();
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    if (this.settled) l.sync();
    return () => void this.listeners.delete(l);
  }

  get watched(): boolean {
    return this.listeners.size > 0;
  }

  stop(): void {
    this.abort.abort();
  }

  private each(f: (l: Listener) => void): void {
    for (const l of [...this.listeners]) f(l);
  }

  private sync(): void {
    this.settled = true;
    this.each((l) => l.sync());
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
          onOpen: () => {
            this.each((l) => l.trouble(undefined));
            if (!this.lastEventId) this.sync();
          },
        });
        for await (const e of events) {
          backoff = 500;
          if (e.id) this.lastEventId = e.id;
          if (e.type === "reset") {
            this.lastEventId = undefined;
            this.sync();
          } else if (e.type === "revoked") {
            this.each((l) => l.trouble(`live updates stopped: ${describeData(e.data)}`));
            return;
          } else if (e.type === "ADDED" || e.type === "MODIFIED" || e.type === "DELETED") {
            const o = e.data as Obj;
            if (this.plural === "sandboxfleets" && e.type !== "DELETED") sample(o);
            this.each((l) => l.change(e.type as Change, o));
          }
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const status = (err as { status?: number }).status;
        if (status === 401) {
          checked(Object.assign(err as object, { status }));
          return;
        }
        const why = status === 403 ? describe(err) : `reconnecting to live updates: ${describe(err)}`;
        this.each((l) => l.trouble(why));
        // Readers need not wait for a stream that does not open: they read without it.
        if (!this.settled) this.sync();
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

const streams = new Map<string, Stream>();

/** Stops every live stream (on sign-out). */
export function stopAll(): void {
  for (const s of streams.values()) s.stop();
  streams.clear();
}

/** Subscribes `l` to the stream of `plural` in `namespace` while a component shows it. */
function useStream(namespace: string, plural: Plural, listener: () => Listener, deps: unknown[]): void {
  useEffect(() => {
    const key = `${namespace}/${plural}`;
    let s = streams.get(key);
    if (!s) {
      s = new Stream(namespace, plural);
      streams.set(key, s);
    }
    const stream = s;
    const unsubscribe = stream.subscribe(listener());
    return () => {
      unsubscribe();
      // A stream no page shows for a while closes (the gateway caps streams per caller);
      // moving between pages of one namespace keeps it.
      setTimeout(() => {
        if (!stream.watched && streams.get(key) === stream) {
          stream.stop();
          streams.delete(key);
        }
      }, 5000);
    };
  }, [namespace, plural, ...deps]);
}

/** Rows per page of every list the console shows. */
export const PAGE_SIZE = 50;

export interface Paging {
  /** 0-based. */
  index: number;
  /** Rows per page. */
  size: number;
  /** How many objects the whole list holds, when the gateway says how many follow. */
  total?: number;
  hasPrevious: boolean;
  hasNext: boolean;
  previous: () => void;
  next: () => void;
}

export interface PageState {
  items: Obj[];
  loaded: boolean;
  error?: string;
  /** A notice about the paging itself (the list was read again from its start). */
  notice?: string;
  paging: Paging;
}

type ListAnswer = { items?: Obj[]; metadata?: { continue?: string; remainingItemCount?: number } };

/** One page of a kind's list, read from the gateway page by page and kept current. */
export function usePage(namespace: string, plural: Plural, pageSize = PAGE_SIZE): PageState {
  const [view, setView] = useState<{
    items: Obj[];
    loaded: boolean;
    error?: string;
    trouble?: string;
    notice?: string;
    index: number;
    next?: string;
    total?: number;
  }>({ items: [], loaded: false, index: 0 });
  // The continue token of each page visited: tokens[i] reads page i.
  const tokens = useRef<(string | undefined)[]>([undefined]);
  const index = useRef(0);
  const reads = useRef(0);
  // Changes that arrive while a page is being read, applied to what the read gives.
  const pending = useRef<[Change, Obj][] | undefined>(undefined);

  const fold = (items: Obj[], type: Change, o: Obj, onFirst: boolean, last: boolean): Obj[] => {
    const name = o.metadata.name;
    const at = items.findIndex((x) => x.metadata.name === name);
    if (type === "DELETED") return at < 0 ? items : items.filter((_, i) => i !== at);
    if (at >= 0) return newer(o, items[at]) ? items.map((x, i) => (i === at ? o : x)) : items;
    // A new object belongs on this page when its name falls within the page's range.
    const first = items[0]?.metadata.name;
    const end = items[items.length - 1]?.metadata.name;
    const fits =
      (onFirst || (first !== undefined && name > first)) && (last || (end !== undefined && name < end));
    if (!fits) return items;
    return [...items, o].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  };

  const read = async (i: number) => {
    const seq = ++reads.current;
    pending.current = [];
    try {
      const page = (await call(
        api().GET(`/v1/namespaces/{namespace}/${plural}` as "/v1/namespaces/{namespace}/workspaces", {
          params: {
            path: { namespace },
            query: { limit: pageSize, ...(tokens.current[i] ? { continue: tokens.current[i] } : {}) },
          },
        }),
      )) as unknown as ListAnswer;
      if (seq !== reads.current) return;
      const next = page.metadata?.continue || undefined;
      tokens.current = [...tokens.current.slice(0, i + 1), next];
      index.current = i;
      let items = page.items ?? [];
      for (const [type, o] of pending.current ?? []) items = fold(items, type, o, i === 0, !next);
      pending.current = undefined;
      const remaining = page.metadata?.remainingItemCount;
      setView((v) => ({
        ...v,
        items,
        loaded: true,
        error: undefined,
        index: i,
        next,
        total:
          remaining !== undefined
            ? i * pageSize + items.length + remaining
            : next
              ? undefined
              : i * pageSize + items.length,
      }));
    } catch (err) {
      if (seq !== reads.current) return;
      pending.current = undefined;
      // A continue token the apiserver no longer knows: the list changed a lot; start again.
      if (err instanceof ProblemError && err.status === 410 && i > 0) {
        tokens.current = [undefined];
        setView((v) => ({
          ...v,
          notice: "The list changed too much to go on from here; back to its first page.",
        }));
        return void read(0);
      }
      setView((v) => ({ ...v, loaded: true, error: describe(err) }));
    }
  };

  useEffect(() => {
    tokens.current = [undefined];
    index.current = 0;
    setView({ items: [], loaded: false, index: 0 });
  }, [namespace, plural]);

  useStream(
    namespace,
    plural,
    () => ({
      sync: () => void read(index.current),
      change: (type, o) => {
        if (pending.current) return void pending.current.push([type, o]);
        setView((v) => ({ ...v, items: fold(v.items, type, o, v.index === 0, !v.next) }));
      },
      trouble: (message) => setView((v) => (v.trouble === message ? v : { ...v, trouble: message })),
    }),
    [],
  );

  const go = (i: number) => {
    setView((v) => ({ ...v, notice: undefined }));
    void read(i);
  };
  return {
    items: view.items,
    loaded: view.loaded,
    ...(view.error || view.trouble ? { error: view.error ?? view.trouble } : {}),
    ...(view.notice ? { notice: view.notice } : {}),
    paging: {
      index: view.index,
      size: pageSize,
      ...(view.total !== undefined ? { total: view.total } : {}),
      hasPrevious: view.index > 0,
      hasNext: Boolean(view.next),
      previous: () => go(Math.max(0, view.index - 1)),
      next: () => {
        if (view.next) go(view.index + 1);
      },
    },
  };
}

export interface ObjectState {
  object?: Obj;
  loaded: boolean;
  /** The object does not exist (404). */
  missing: boolean;
  error?: string;
}

/** One object, read from the gateway and kept current. */
export function useObject(namespace: string, plural: Plural, name: string): ObjectState {
  const [state, setState] = useState<ObjectState & { trouble?: string }>({ loaded: false, missing: false });
  const reads = useRef(0);

  useEffect(() => setState({ loaded: false, missing: false }), [namespace, plural, name]);

  useStream(
    namespace,
    plural,
    () => ({
      sync: () => {
        const seq = ++reads.current;
        call(
          api().GET(
            `/v1/namespaces/{namespace}/${plural}/{name}` as "/v1/namespaces/{namespace}/workspaces/{name}",
            {
              params: { path: { namespace, name } },
            },
          ),
        ).then(
          (o) => {
            if (seq !== reads.current) return;
            const got = o as unknown as Obj;
            if (plural === "sandboxfleets") sample(got);
            setState((s) => ({
              ...s,
              loaded: true,
              missing: false,
              error: undefined,
              object: newer(got, s.object) ? got : s.object,
            }));
          },
          (err: unknown) => {
            if (seq !== reads.current) return;
            const missing = err instanceof ProblemError && err.status === 404;
            setState((s) => ({
              ...s,
              loaded: true,
              missing,
              ...(missing ? { object: undefined, error: undefined } : { error: describe(err) }),
            }));
          },
        );
      },
      change: (type, o) => {
        if (o.metadata.name !== name) return;
        setState((s) =>
          type === "DELETED"
            ? { ...s, loaded: true, missing: true, object: undefined }
            : newer(o, s.object)
              ? { ...s, loaded: true, missing: false, object: o }
              : s,
        );
      },
      trouble: (message) => setState((s) => (s.trouble === message ? s : { ...s, trouble: message })),
    }),
    [name],
  );
  const error = state.error ?? state.trouble;
  return {
    loaded: state.loaded,
    missing: state.missing,
    ...(state.object ? { object: state.object } : {}),
    ...(error ? { error } : {}),
  };
}
