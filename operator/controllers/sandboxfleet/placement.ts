// Workspace placement onto the sandboxes of a fleet, as pure functions.
//
// Tenancy: a sandbox serves one owner, or the shared ownerless pool, or one dedicated
// ownerless workspace; its tenant follows from the workspaces placed on it (so the map
// survives restarts: it is re-derived from Workspace status). Rules:
// - a workspace with an ownerId goes to the sandbox of that owner while it exists (owners
//   are never split); a new owner takes an empty sandbox;
// - ownerless + shared: the fullest shared sandbox with room whose cpu AND memory are below
//   the thresholds, else an empty sandbox; ownerless + dedicated: always an empty sandbox;
// - never more than maxPerSandbox workspaces on a sandbox; a sandbox that is not ready,
//   draining, or under cpu/memory pressure takes no new workspaces;
// - a workspace may prefer a sandbox (one a caller asked for it): it goes there when the
//   rules above allow, else as they say.

export interface PlacedWorkspace {
  key: string;
  ownerId?: string;
  /** A sandbox to take when the rules allow it (a caller asked that sandbox for the workspace). */
  prefer?: string;
}

export interface SandboxView {
  name: string;
  ready: boolean;
  draining: boolean;
  /** Latest load sample as fractions of the limits; undefined when unknown. */
  load?: { cpu: number; memory: number };
  workspaces: PlacedWorkspace[];
  /** Set for a sandbox holding one dedicated ownerless workspace. */
  dedicated?: boolean;
}

export interface PlacementPolicy {
  maxPerSandbox: number;
  cpu: number;
  memory: number;
  ownerlessPool: "shared" | "dedicated";
}

export type Tenant =
  { kind: "empty" } | { kind: "owner"; ownerId: string } | { kind: "shared" } | { kind: "dedicated" };

export type Decision = { sandbox: string } | { wait: string; needsNewSandbox: boolean };

export function tenantOf(s: SandboxView): Tenant {
  const first = s.workspaces[0];
  if (!first) return { kind: "empty" };
  if (first.ownerId) return { kind: "owner", ownerId: first.ownerId };
  return s.dedicated ? { kind: "dedicated" } : { kind: "shared" };
}

export function underPressure(s: SandboxView, policy: PlacementPolicy): boolean {
  return s.load !== undefined && (s.load.cpu >= policy.cpu || s.load.memory >= policy.memory);
}

function open(s: SandboxView, policy: PlacementPolicy): boolean {
  return s.ready && !s.draining && !underPressure(s, policy) && s.workspaces.length < policy.maxPerSandbox;
}

/** The first empty sandbox that can take a workspace (name order keeps decisions stable). */
function emptySandbox(sandboxes: SandboxView[], policy: PlacementPolicy): SandboxView | undefined {
  return sandboxes.filter((s) => s.workspaces.length === 0 && open(s, policy)).sort(byName)[0];
}

const byName = (a: SandboxView, b: SandboxView) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Whether the rules above let `ws` go to `s` (besides room and load). */
function fits(
  ws: PlacedWorkspace,
  s: SandboxView,
  sandboxes: SandboxView[],
  policy: PlacementPolicy,
): boolean {
  const t = tenantOf(s);
  if (ws.ownerId) {
    if (t.kind === "owner") return t.ownerId === ws.ownerId;
    // Owners are never split: an empty sandbox only while the owner has none.
    return (
      t.kind === "empty" &&
      !sandboxes.some((o) => {
        const ot = tenantOf(o);
        return ot.kind === "owner" && ot.ownerId === ws.ownerId;
      })
    );
  }
  if (t.kind === "empty") return true;
  return t.kind === "shared" && policy.ownerlessPool === "shared";
}

export function place(ws: PlacedWorkspace, sandboxes: SandboxView[], policy: PlacementPolicy): Decision {
  const preferred = ws.prefer ? sandboxes.find((s) => s.name === ws.prefer) : undefined;
  if (preferred && open(preferred, policy) && fits(ws, preferred, sandboxes, policy))
    return { sandbox: preferred.name };
  if (ws.ownerId) {
    const home = sandboxes.find((s) => {
      const t = tenantOf(s);
      return t.kind === "owner" && t.ownerId === ws.ownerId;
    });
    if (home) {
      if (open(home, policy)) return { sandbox: home.name };
      const why = !home.ready
        ? "is not ready"
        : home.draining
          ? "is draining"
          : underPressure(home, policy)
            ? "is under cpu/memory pressure"
            : `holds ${policy.maxPerSandbox} workspaces (maxWorkspacesPerSandbox)`;
      return { wait: `sandbox ${home.name} of owner ${ws.ownerId} ${why}`, needsNewSandbox: false };
    }
    const empty = emptySandbox(sandboxes, policy);
    return empty ? { sandbox: empty.name } : { wait: "no empty sandbox is ready yet", needsNewSandbox: true };
  }
  if (policy.ownerlessPool === "shared") {
    const shared = sandboxes
      .filter((s) => tenantOf(s).kind === "shared" && open(s, policy))
      .sort((a, b) => b.workspaces.length - a.workspaces.length || byName(a, b))[0];
    if (shared) return { sandbox: shared.name };
  }
  const empty = emptySandbox(sandboxes, policy);
  return empty
    ? { sandbox: empty.name }
    : { wait: "no sandbox with room is ready yet", needsNewSandbox: true };
}

export interface PlacementPlan {
  placements: Map<string, string>;
  waiting: Map<string, string>;
  /** Empty sandboxes the waiting workspaces would need (owners and dedicated one each, shared packed). */
  newSandboxesNeeded: number;
}

/** Places workspaces in order, counting each placement before the next decision. */
export function placeAll(
  pending: PlacedWorkspace[],
  sandboxes: SandboxView[],
  policy: PlacementPolicy,
): PlacementPlan {
  const views = sandboxes.map((s) => ({ ...s, workspaces: [...s.workspaces] }));
  const placements = new Map<string, string>();
  const waiting = new Map<string, string>();
  const newOwners = new Set<string>();
  let sharedWaiting = 0;
  let dedicatedWaiting = 0;
  for (const ws of pending) {
    const decision = place(ws, views, policy);
    if ("sandbox" in decision) {
      const target = views.find((s) => s.name === decision.sandbox)!;
      if (!ws.ownerId && policy.ownerlessPool === "dedicated") target.dedicated = true;
      target.workspaces.push(ws);
      placements.set(ws.key, decision.sandbox);
      continue;
    }
    waiting.set(ws.key, decision.wait);
    if (!decision.needsNewSandbox) continue;
    if (ws.ownerId) newOwners.add(ws.ownerId);
    else if (policy.ownerlessPool === "dedicated") dedicatedWaiting++;
    else sharedWaiting++;
  }
  const newSandboxesNeeded =
    newOwners.size + dedicatedWaiting + Math.ceil(sharedWaiting / policy.maxPerSandbox);
  return { placements, waiting, newSandboxesNeeded };
}
