// What the trust controller needs to know of a namespace's AgentRuntimes, kept up to date
// from the cache's events: how many there are, and which Workspaces the live ones work in.
// A namespace pass then costs O(its Workspaces), not O(its AgentRuntimes): with 10,000 in
// one namespace, listing them at every pass was most of the operator's CPU under a stream
// of spec changes. It also says when a change matters to trust at all (an env edit does
// not), so the controller is not woken for the others.
import type { AgentRuntime } from "../../api/v1alpha1/index.ts";
import { keyOf, splitKey } from "../../lib/kube/informer.ts";
import type { TypedInformer } from "../../lib/kube/typed.ts";

/** The facts of one AgentRuntime that trust depends on. */
interface Facts {
  namespace: string;
  /** Not being deleted. */
  live: boolean;
  /** The Workspace it works in, when live. */
  workspace: string | undefined;
}

interface Namespace {
  /** AgentRuntimes in the cache (that parse), live or not. */
  agents: number;
  live: number;
  /** Live AgentRuntimes per Workspace they work in. */
  workspaces: Map<string, number>;
}

const factsOf = (ar: AgentRuntime): Facts => {
  const live = !ar.metadata.deletionTimestamp;
  return {
    namespace: ar.metadata.namespace ?? "",
    live,
    workspace: live ? ar.spec.workspaceRef?.name : undefined,
  };
};

const same = (a: Facts | undefined, b: Facts | undefined) =>
  a?.live === b?.live && a?.workspace === b?.workspace && a?.namespace === b?.namespace;

export class AgentTally {
  private readonly facts = new Map<string, Facts>();
  private readonly namespaces = new Map<string, Namespace>();
  private readonly listeners: ((namespace: string) => void)[] = [];

  constructor(informer: TypedInformer<"AgentRuntime">) {
    for (const ar of informer.list()) this.put(keyOf(ar), factsOf(ar));
    // The handlers get the version that parses (the one before, when the new one does not):
    // read the cache again so an AgentRuntime that stopped parsing is not counted.
    const seen = (ar: AgentRuntime) => {
      const key = keyOf(ar);
      const { namespace, name } = splitKey(key);
      const now = informer.get(namespace, name);
      this.changed(key, now ? factsOf(now) : undefined);
    };
    informer.on("add", seen);
    informer.on("update", seen);
    informer.on("delete", (ar) => this.changed(keyOf(ar), undefined));
  }

  /** Calls `fn` with the namespace whenever an AgentRuntime there comes, goes, or changes what trust depends on. */
  onChange(fn: (namespace: string) => void): void {
    this.listeners.push(fn);
  }

  /** AgentRuntimes in the namespace (that parse), and how many of them are not being deleted. */
  count(namespace: string): { agents: number; live: number } {
    const ns = this.namespaces.get(namespace);
    return { agents: ns?.agents ?? 0, live: ns?.live ?? 0 };
  }

  /** The Workspaces live AgentRuntimes of the namespace work in. */
  workspaces(namespace: string): string[] {
    return [...(this.namespaces.get(namespace)?.workspaces.keys() ?? [])];
  }

  /** Whether a live AgentRuntime of this name is in the cache. */
  liveAgent(namespace: string, name: string): boolean {
    return this.facts.get(`${namespace}/${name}`)?.live === true;
  }

  private changed(key: string, now: Facts | undefined): void {
    const before = this.facts.get(key);
    if (same(before, now)) return;
    this.drop(key);
    if (now) this.put(key, now);
    const namespace = now?.namespace ?? before?.namespace;
    if (namespace !== undefined) for (const fn of this.listeners) fn(namespace);
  }

  private put(key: string, f: Facts): void {
    this.facts.set(key, f);
    let ns = this.namespaces.get(f.namespace);
    if (!ns) this.namespaces.set(f.namespace, (ns = { agents: 0, live: 0, workspaces: new Map() }));
    ns.agents++;
    if (f.live) ns.live++;
    if (f.workspace) ns.workspaces.set(f.workspace, (ns.workspaces.get(f.workspace) ?? 0) + 1);
  }

  private drop(key: string): void {
    const f = this.facts.get(key);
    if (!f) return;
    this.facts.delete(key);
    const ns = this.namespaces.get(f.namespace)!;
    ns.agents--;
    if (f.live) ns.live--;
    if (f.workspace) {
      const n = ns.workspaces.get(f.workspace)! - 1;
      if (n === 0) ns.workspaces.delete(f.workspace);
      else ns.workspaces.set(f.workspace, n);
    }
    if (ns.agents === 0) this.namespaces.delete(f.namespace);
  }
}
