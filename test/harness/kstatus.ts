// How kstatus (sigs.k8s.io/cli-utils, used by Flux, Argo CD health checks and `kubectl
// wait`-style tools) judges a custom resource, plus the Ready condition agentry promises:
// Current when status.observedGeneration equals metadata.generation, Ready is True and
// neither Reconciling nor Stalled is True; Failed when Stalled is True; else InProgress.
export type KStatus = "Current" | "InProgress" | "Failed";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Judged {
  status: KStatus;
  /** Why it is not Current, for a test failure message. */
  why?: string;
}

export function judge(obj: {
  metadata?: { generation?: number };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}): Judged {
  const generation = obj.metadata?.generation;
  const observed = obj.status?.observedGeneration;
  const conditions = obj.status?.conditions ?? [];
  const cond = (type: string) => conditions.find((c) => c.type === type);
  const stalled = cond("Stalled");
  if (stalled?.status === "True")
    return { status: "Failed", why: `Stalled: ${stalled.reason}: ${stalled.message}` };
  if (generation !== undefined && observed !== generation)
    return { status: "InProgress", why: `observedGeneration ${observed} != generation ${generation}` };
  const reconciling = cond("Reconciling");
  if (reconciling?.status === "True")
    return { status: "InProgress", why: `Reconciling: ${reconciling.reason}: ${reconciling.message}` };
  const ready = cond("Ready");
  if (ready?.status !== "True")
    return {
      status: "InProgress",
      why: ready ? `Ready=${ready.status}: ${ready.reason}: ${ready.message}` : "no Ready condition",
    };
  return { status: "Current" };
}
