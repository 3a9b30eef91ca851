// What a Pipeline depends on, read from the caches: the AgentRuntimes its steps name.
import type { Pipeline } from "../../../api/v1alpha1/index.ts";
import { childName } from "../../../lib/kube/names.ts";
import type { PipelineInformers } from "./watches.ts";

/** In-cluster URLs of the AgentRuntimes the steps name, or what is missing. */
export function agentsOf(
  informers: Pick<PipelineInformers, "agents">,
  pl: Pipeline,
): { agentUrls: Record<string, string>; agentProblem?: string } {
  const agentUrls: Record<string, string> = {};
  const missing: string[] = [];
  for (const step of pl.spec.steps) {
    const ref = step.agentRef?.name;
    if (!ref) continue;
    const agent = informers.agents.get(pl.metadata.namespace, ref);
    if (!agent) {
      missing.push(`${ref} (step ${step.name})`);
      continue;
    }
    agentUrls[ref] =
      agent.status?.endpoint ??
      `http://${childName(ref)}.${pl.metadata.namespace}.svc:${agent.spec.port ?? 8080}`;
  }
  if (!missing.length) return { agentUrls };
  return {
    agentUrls,
    agentProblem: `AgentRuntime ${missing.join(", ")} does not exist in namespace ${pl.metadata.namespace}; create it or fix spec.steps[].agentRef. No run starts until then`,
  };
}
