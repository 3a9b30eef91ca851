// What GET /readyz answers (contracts/agent.ts Readiness), as a pure function of what the
// agent knows. The operator and `kubectl describe` show the reason, so it is one line a
// person can act on.
import type { Readiness } from "../../contracts/agent.ts";

export interface ReadinessInput {
  /** Bad or missing model settings (config.ts). */
  modelProblem: string | undefined;
  /** A malformed AGENTRY_WORKSPACE_URL. */
  workspaceProblem: string | undefined;
  /** The configured workspace: undefined when none, else whether the sandbox has it yet. */
  workspace: { name: string; found: boolean; lastError?: string | undefined } | undefined;
  /** SIGTERM received: finishing in-flight tasks. */
  stopping: boolean;
}

export function readiness(i: ReadinessInput): Readiness {
  if (i.stopping) return { status: "stopping", reason: "the agent is shutting down" };
  if (i.modelProblem) return { status: "error", reason: i.modelProblem };
  if (i.workspaceProblem) return { status: "error", reason: i.workspaceProblem };
  if (i.workspace && !i.workspace.found)
    return {
      status: "starting",
      reason: `waiting for workspace ${i.workspace.name} on its sandbox${i.workspace.lastError ? `: ${i.workspace.lastError}` : ""}`,
    };
  return { status: "ready" };
}
