// Waking a workspace the operator suspended for idleness (annotation agentry.dev/idle-suspended):
// a data-plane request removes the annotation with the gateway's own identity (after the
// caller's SubjectAccessReview for the call), so the operator places and restores it, and
// waits for it to be Ready, up to a bound; past the bound the answer is 503 with Retry-After.
// A workspace whose files are being restored (after a wake or a move) is waited for alike.
// A workspace suspended by its spec stays suspended (409): only its owner's edit resumes it.
import {
  ANNOTATION_IDLE_SUSPENDED,
  isIdleSuspended,
  WorkspaceReason,
  type Workspace,
} from "../../api/v1alpha1/index.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { problemOf } from "../problem.ts";

/** How long a request waits for a workspace to wake before answering 503 (--wake-wait). */
export const DEFAULT_WAKE_WAIT_MS = 30_000;
/** How often the workspace (or the agent waiting for it) is read again while it wakes. */
export const WAKE_POLL_MS = 500;
/** What Retry-After says past the bound. */
const RETRY_AFTER_SECONDS = 5;

type Ws = Workspace & KubeObject;

const readyOf = (ws: Ws) => ws.status?.conditions?.find((c) => c.type === "Ready");

/**
 * Whether a request to this workspace wakes it and waits: suspended for idleness, or on its
 * way back (woken, its status not caught up yet, or its files being restored).
 */
export function wakes(ws: Ws): boolean {
  if (ws.spec?.suspended) return false;
  if (isIdleSuspended(ws)) return true;
  const reason = readyOf(ws)?.reason;
  return reason === WorkspaceReason.IdleSuspended || reason === WorkspaceReason.Restoring;
}

/** Placed on a sandbox that serves it. */
function awake(ws: Ws): boolean {
  const ready = readyOf(ws);
  return (
    !isIdleSuspended(ws) &&
    !!ws.status?.sandboxPod &&
    ready?.status === "True" &&
    ready.reason === WorkspaceReason.Placed &&
    (ready.observedGeneration === undefined || ready.observedGeneration === ws.metadata.generation)
  );
}

/**
 * Wakes the workspace when it is suspended for idleness and waits until it is awake (or
 * suspended by its spec meanwhile, which the caller answers); 503 with Retry-After past
 * `boundMs`, 404 when it goes.
 */
export async function wake(
  kube: KubeClient,
  ws: Ws,
  boundMs: number,
  now: () => number = Date.now,
): Promise<Ws> {
  const ref = `Workspace ${ws.metadata.namespace}/${ws.metadata.name}`;
  const gone = () => problemOf(404, `${ref} not found`);
  const deadline = now() + boundMs;
  const asleep = isIdleSuspended(ws) || readyOf(ws)?.reason === WorkspaceReason.IdleSuspended;
  let current = ws;
  for (;;) {
    if (current.spec?.suspended || awake(current)) return current;
    if (isIdleSuspended(current)) {
      try {
        current = await kube.mergePatch<Ws>(current, {
          metadata: { annotations: { [ANNOTATION_IDLE_SUSPENDED]: null } },
        });
      } catch (err) {
        if (isNotFound(err)) throw gone();
        throw err;
      }
      continue;
    }
    const left = deadline - now();
    if (left <= 0) {
      const ready = readyOf(current);
      throw problemOf(
        503,
        `${ref} ${asleep ? "was suspended for idleness and is waking up" : "is being restored"} (phase ${current.status?.phase ?? "unknown"}: ${ready?.message ?? "not placed yet"}); retry shortly`,
        {
          headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
          extra: { phase: current.status?.phase ?? null },
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(WAKE_POLL_MS, left)));
    try {
      current = await kube.get<Ws>(
        "agentry.dev/v1alpha1",
        "Workspace",
        ws.metadata.namespace,
        ws.metadata.name!,
      );
    } catch (err) {
      if (isNotFound(err)) throw gone();
      throw err;
    }
  }
}
