// Fixture builders and an in-memory Lookup for tests of the rules (here and in the gateway).
// Specs go through the zod schemas, so fixtures carry the same defaults as stored objects.
import {
  specSchemas,
  type AgentRuntime,
  type Pipeline,
  type SandboxFleet,
  type Workspace,
} from "../../api/v1alpha1/index.ts";
import type { Lookup } from "./types.ts";

export const NS = "team-a";
const meta = (name: string, extra: Partial<Workspace["metadata"]> = {}) => ({
  name,
  namespace: NS,
  ...extra,
});
const API = "agentry.dev/v1alpha1" as const;

export const fleet = (
  name: string,
  spec: object = {},
  metadata: Partial<SandboxFleet["metadata"]> = {},
): SandboxFleet => ({
  apiVersion: API,
  kind: "SandboxFleet",
  metadata: meta(name, metadata),
  spec: specSchemas.SandboxFleet.parse({
    template: { image: "ghcr.io/acme/sandbox:1.0", resources: { limits: { cpu: "1", memory: "1Gi" } } },
    ...spec,
  }),
});

export const workspace = (
  name: string,
  spec: object = {},
  metadata: Partial<Workspace["metadata"]> = {},
): Workspace => ({
  apiVersion: API,
  kind: "Workspace",
  metadata: meta(name, metadata),
  spec: specSchemas.Workspace.parse({ fleetRef: { name: "fleet" }, ...spec }),
});

export const agent = (name: string, spec: object = {}): AgentRuntime => ({
  apiVersion: API,
  kind: "AgentRuntime",
  metadata: meta(name),
  spec: specSchemas.AgentRuntime.parse({
    image: "ghcr.io/acme/agent:1.0",
    resources: { limits: { cpu: "1", memory: "1Gi" } },
    ...spec,
  }),
});

export const pipeline = (name: string, spec: object = {}): Pipeline => ({
  apiVersion: API,
  kind: "Pipeline",
  metadata: meta(name),
  spec: specSchemas.Pipeline.parse({
    activeDeadlineSeconds: 600,
    steps: [{ name: "one", image: "ghcr.io/acme/tools:1.0" }],
    ...spec,
  }),
});

export interface FakeWorld {
  secrets?: Record<string, string[]>;
  fleets?: SandboxFleet[];
  workspaces?: Workspace[];
  agents?: AgentRuntime[];
}

/** A Lookup over fixed objects (all in namespace NS); counts calls in `calls`. */
export function fakeLookup(world: FakeWorld = {}): Lookup & { calls: number } {
  const byName =
    <T extends { metadata: { name?: string; namespace?: string } }>(items: T[] | undefined) =>
    (ns: string, name: string) => {
      lookup.calls++;
      return Promise.resolve(items?.find((o) => o.metadata.name === name && o.metadata.namespace === ns));
    };
  const lookup = {
    calls: 0,
    secretKeys: (ns: string, name: string) => {
      lookup.calls++;
      return Promise.resolve(ns === NS ? world.secrets?.[name] : undefined);
    },
    workspace: byName(world.workspaces),
    sandboxFleet: byName(world.fleets),
    agentRuntime: byName(world.agents),
    workspacesOfFleet: (ns: string, name: string) => {
      lookup.calls++;
      return Promise.resolve(
        (world.workspaces ?? []).filter((w) => w.metadata.namespace === ns && w.spec.fleetRef.name === name),
      );
    },
  };
  return lookup;
}

/** What a table case expects: allowed, or denied with a code and a message matching a pattern. */
export interface Expect {
  deny?: RegExp;
  code?: number;
  warn?: RegExp;
}

/** Compares a verdict with a case's expectation; the message explains a mismatch. */
export function expectVerdict(
  v: { allowed: boolean; code: number; message: string; warnings: string[] },
  want: Expect,
): string | undefined {
  if (v.allowed !== !want.deny) return `allowed=${v.allowed}, message=${v.message}`;
  if (want.deny && !want.deny.test(v.message))
    return `message "${v.message}" does not match ${String(want.deny)}`;
  if (want.code !== undefined && v.code !== want.code) return `code ${v.code}, want ${want.code}`;
  if (want.warn && !v.warnings.some((w) => want.warn!.test(w)))
    return `warnings ${JSON.stringify(v.warnings)} lack ${String(want.warn)}`;
  if (!want.warn && !want.deny && v.warnings.length)
    return `unexpected warnings ${JSON.stringify(v.warnings)}`;
  return undefined;
}
