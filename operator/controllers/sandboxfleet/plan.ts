// What one pass does with each Workspace of a fleet, as a pure function of the workspaces,
// the fleet's sandboxes, what the sandboxes say of the workspaces on them, and the time:
// release the deleted and the suspended (by spec, or now for idleness), wake those asleep
// for idleness that a caller asked a sandbox for, let those whose sandbox is stopping wait
// for it, keep the placed ones on their sandbox, and place the waiting ones (placement.ts),
// oldest first, each where it was asked for when the rules allow.
import { isIdleSuspended, type Workspace } from "../../../api/v1alpha1/index.ts";
import type { WorkspaceInfo } from "../../../contracts/sandbox.ts";
import { keyOf } from "../../../lib/kube/informer.ts";
import { idleVerdict, isSuspended } from "../workspace.lifetime.ts";
import { workspaceId } from "./desired.ts";
import {
  placeAll,
  underPressure,
  type PlacedWorkspace,
  type PlacementPolicy,
  type SandboxView,
} from "./placement.ts";
import type { Demand } from "./scaling.ts";

/** What each sandbox says of its workspaces, by workspace id. */
export type SandboxLists = ReadonlyMap<string, ReadonlyMap<string, WorkspaceInfo>>;

export interface WorkspaceInput {
  members: readonly Workspace[];
  /** The fleet's sandboxes, with the workspaces of others than `members` already on them. */
  sandboxes: readonly SandboxView[];
  lists: SandboxLists;
  /** Sandbox pods being deleted while the fleet has a store: their workspaces wait for them to go. */
  stopping: ReadonlySet<string>;
  stored: boolean;
  policy: PlacementPolicy;
  /** Workspaces (by id) callers asked a sandbox for at the last sample, and that sandbox. */
  wakeAsks: ReadonlyMap<string, string>;
}

export interface OnSandbox {
  ws: Workspace;
  sandbox: string;
  /** What the sandbox says of the workspace, when it listed it. */
  known?: WorkspaceInfo;
}

export interface WorkspacePlan {
  deleting: Workspace[];
  /** Suspended for idleness, and asked for on a sandbox: to wake (placed back there next). */
  wake: { ws: Workspace; sandbox: string }[];
  /** Suspended workspaces, and the sandbox they still hold; `idle` when suspending them now. */
  release: { ws: Workspace; home?: string; idle?: string }[];
  /** Placed on a sandbox that is stopping. */
  leavingHome: Workspace[];
  /** Placed workspaces (on their sandbox), then new placements, in that order. */
  onSandbox: OnSandbox[];
  waiting: { ws: Workspace; why: string }[];
  /** The sandboxes with every workspace on them after this pass's placements. */
  sandboxes: SandboxView[];
  /** Empty sandboxes the waiting workspaces need. */
  newSandboxesNeeded: number;
}

const placedAs = (ws: Workspace, prefer?: string): PlacedWorkspace => ({
  key: keyOf(ws),
  ...(ws.spec.ownerId ? { ownerId: ws.spec.ownerId } : {}),
  ...(prefer ? { prefer } : {}),
});

const oldestFirst = (a: Workspace, b: Workspace) =>
  String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)) ||
  keyOf(a).localeCompare(keyOf(b));

export function planWorkspaces(input: WorkspaceInput, now: Date): WorkspacePlan {
  const sandboxes = input.sandboxes.map((s) => ({ ...s, workspaces: [...s.workspaces] }));
  const byName = new Map(sandboxes.map((s) => [s.name, s]));
  const known = (ws: Workspace, sandbox: string) => input.lists.get(sandbox)?.get(workspaceId(ws));
  const plan: WorkspacePlan = {
    deleting: [],
    wake: [],
    release: [],
    leavingHome: [],
    onSandbox: [],
    waiting: [],
    sandboxes,
    newSandboxesNeeded: 0,
  };
  const pending: Workspace[] = [];
  for (const ws of input.members) {
    if (ws.metadata.deletionTimestamp) {
      plan.deleting.push(ws);
      continue;
    }
    const pod = ws.status?.sandboxPod;
    const home = pod ? byName.get(pod) : undefined;
    const idle =
      home && !isSuspended(ws) ? idleVerdict(ws, known(ws, home.name), input.stored, now) : undefined;
    const askedOn =
      isIdleSuspended(ws) && !ws.spec.suspended ? input.wakeAsks.get(workspaceId(ws)) : undefined;
    if (askedOn) plan.wake.push({ ws, sandbox: askedOn });
    else if (isSuspended(ws) || idle?.idle) {
      plan.release.push({
        ws,
        ...(home ? { home: home.name } : {}),
        ...(idle?.idle ? { idle: idle.message } : {}),
      });
    } else if (!home && pod && input.stopping.has(pod)) plan.leavingHome.push(ws);
    else if (home) {
      home.workspaces.push(placedAs(ws));
      const info = known(ws, home.name);
      plan.onSandbox.push({ ws, sandbox: home.name, ...(info ? { known: info } : {}) });
    } else pending.push(ws);
  }
  pending.sort(oldestFirst);
  // A workspace a sandbox was asked for goes back there where it fits: the caller kept that address.
  const placed = placeAll(
    pending.map((ws) => placedAs(ws, input.wakeAsks.get(workspaceId(ws)))),
    sandboxes,
    input.policy,
  );
  for (const ws of pending) {
    const key = keyOf(ws);
    const sandbox = placed.placements.get(key);
    if (!sandbox) {
      plan.waiting.push({ ws, why: placed.waiting.get(key) ?? "placing" });
      continue;
    }
    byName.get(sandbox)!.workspaces.push(placedAs(ws));
    const info = known(ws, sandbox);
    plan.onSandbox.push({ ws, sandbox, ...(info ? { known: info } : {}) });
  }
  plan.newSandboxesNeeded = placed.newSandboxesNeeded;
  return plan;
}

/** What the fleet's size follows: sandboxes in use, those the waiting need, pressure on them. */
export function demandOf(plan: WorkspacePlan, policy: PlacementPolicy): Demand {
  const occupied = plan.sandboxes.filter((s) => s.workspaces.length > 0);
  return {
    occupied: occupied.length,
    newSandboxesNeeded: plan.newSandboxesNeeded,
    pressured: occupied.filter((s) => underPressure(s, policy)).length,
  };
}
