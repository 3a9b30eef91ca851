// When a Workspace goes to sleep or goes away on its own: idle suspension (spec.idleTimeout,
// measured from the sandbox's report of the workspace's last data-plane call) and expiry
// (spec.ttlSecondsAfterCreation, spec.expireAt). Pure verdicts with the clock passed in; the
// fleet controller acts on the first, the expiry controller (workspace.expiry.ts) on the second.
import { isIdleSuspended, type Workspace } from "../../api/v1alpha1/index.ts";
import type { WorkspaceInfo } from "../../contracts/sandbox.ts";
import { validDurationMs as durationMs } from "../../lib/cli/duration.ts";

/** Whether the workspace holds no sandbox by its spec or for idleness. */
export function isSuspended(ws: Pick<Workspace, "metadata" | "spec">): boolean {
  return ws.spec.suspended || isIdleSuspended(ws);
}

export type IdleVerdict =
  | { idle: true; message: string }
  /** Not idle (yet); look again after recheckInMs when it may become idle by then. */
  | { idle: false; recheckInMs?: number };

/**
 * Whether a placed workspace has gone spec.idleTimeout without data-plane activity, from
 * what its sandbox says of it. Never without an object store (suspending would lose the
 * files), nor while its files are not in (restoring, failed) or nothing is known of it.
 */
export function idleVerdict(
  ws: Pick<Workspace, "spec">,
  info: WorkspaceInfo | undefined,
  stored: boolean,
  now: Date,
): IdleVerdict {
  const timeout = ws.spec.idleTimeout;
  if (!timeout || !stored || !info?.lastActivityTime) return { idle: false };
  if (info.durability && info.durability.phase !== "ready") return { idle: false };
  const last = Date.parse(info.lastActivityTime);
  if (!Number.isFinite(last)) return { idle: false };
  const left = last + durationMs(timeout) - now.getTime();
  if (left > 0) return { idle: false, recheckInMs: left };
  return {
    idle: true,
    message: `no data-plane activity since ${info.lastActivityTime} (spec.idleTimeout ${timeout})`,
  };
}

/** When the workspace is to be deleted: the earlier of its TTL and expireAt; undefined: never. */
export function expiryOf(ws: Pick<Workspace, "metadata" | "spec">): Date | undefined {
  const times: number[] = [];
  const ttl = ws.spec.ttlSecondsAfterCreation;
  const created = ws.metadata.creationTimestamp ? Date.parse(String(ws.metadata.creationTimestamp)) : NaN;
  if (ttl !== undefined && Number.isFinite(created)) times.push(created + ttl * 1000);
  const at = ws.spec.expireAt ? Date.parse(ws.spec.expireAt) : NaN;
  if (Number.isFinite(at)) times.push(at);
  return times.length > 0 ? new Date(Math.min(...times)) : undefined;
}

export type ExpiryVerdict =
  | { expired: true; message: string }
  /** Not expired; look again after recheckInMs (absent: it never expires). */
  | { expired: false; recheckInMs?: number };

/** Whether the workspace has outlived spec.ttlSecondsAfterCreation or spec.expireAt at `now`. */
export function expiryVerdict(ws: Pick<Workspace, "metadata" | "spec">, now: Date): ExpiryVerdict {
  const at = expiryOf(ws);
  if (!at) return { expired: false };
  const left = at.getTime() - now.getTime();
  if (left > 0) return { expired: false, recheckInMs: left };
  const why = [
    ...(ws.spec.ttlSecondsAfterCreation !== undefined
      ? [`spec.ttlSecondsAfterCreation ${ws.spec.ttlSecondsAfterCreation}`]
      : []),
    ...(ws.spec.expireAt ? [`spec.expireAt ${ws.spec.expireAt}`] : []),
  ].join(", ");
  return {
    expired: true,
    message: `expired at ${at.toISOString()} (${why}); deleting the workspace${ws.spec.retain ? ", its stored files are retained" : " and its stored files"}`,
  };
}
