// Fixture builders for the AgentRuntime tests: an AgentRuntime through its zod schema (so it
// carries the stored defaults).
import type { AgentRuntime } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";

export function agent(spec: Record<string, unknown> = {}, status?: AgentRuntime["status"]): AgentRuntime {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "AgentRuntime",
    metadata: { name: "coder", namespace: "team", uid: "uid-1", generation: 3 },
    spec: specSchemas.AgentRuntime.parse({ image: "registry.example/agent:1", ...spec }),
    ...(status ? { status } : {}),
  };
}
