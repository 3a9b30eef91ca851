// AgentRuntime admission: image policy, the Workspace it works in, the Secrets its env,
// envFrom and model credentials name; warnings for missing limits, missing credentials and a
// model provider its (default) NetworkPolicy does not let it reach.
import type { AgentRuntime } from "../../api/v1alpha1/index.ts";
import { checkImage } from "./images.ts";
import { checkSecretRefs, envSecretRefs, missing, newRefs, type SecretRef } from "./refs.ts";
import { Findings, type Rule } from "./types.ts";

/** Providers whose APIs need a key; bedrock (IAM), ollama, compatible endpoints and echo may not. */
const KEYED_PROVIDERS = new Set(["openai", "anthropic", "google", "azure-openai"]);

function secretRefs(agent: AgentRuntime): SecretRef[] {
  const refs = envSecretRefs("spec", agent.spec.env, agent.spec.envFrom);
  const cred = agent.spec.model?.credentialsSecretRef;
  if (cred)
    refs.push({ field: "spec.model.credentialsSecretRef", name: cred.name, key: cred.key ?? "api-key" });
  return refs;
}

export const validateAgentRuntime: Rule<AgentRuntime> = async (agent, old, lookup, policy) => {
  const f = new Findings();
  if (!agent) return f.verdict();
  const namespace = agent.metadata.namespace ?? "";
  const spec = agent.spec;
  if (!old || old.spec.image !== spec.image) checkImage(f, "spec.image", spec.image, policy);

  const wsName = spec.workspaceRef?.name;
  if (wsName !== undefined && wsName !== old?.spec.workspaceRef?.name) {
    const ws = await lookup.workspace(namespace, wsName);
    if (!ws)
      missing(
        f,
        "spec.workspaceRef.name",
        "Workspace",
        wsName,
        namespace,
        `create the workspace first or fix the name (kubectl get workspaces -n ${namespace})`,
      );
    else if (ws.spec.suspended)
      f.warn(
        "spec.workspaceRef.name",
        `Workspace "${wsName}" is suspended; the agent waits until it is resumed`,
      );
  }
  await checkSecretRefs(f, namespace, newRefs(secretRefs(agent), old && secretRefs(old)), lookup);

  if (!spec.resources?.limits || Object.keys(spec.resources.limits).length === 0)
    f.warn(
      "spec.resources.limits",
      "not set; the agent may use all the CPU and memory of its node; set limits such as {cpu: '1', memory: 1Gi}",
    );
  const model = spec.model;
  if (model && KEYED_PROVIDERS.has(model.provider) && !model.credentialsSecretRef)
    f.warn(
      "spec.model.credentialsSecretRef",
      `not set; provider ${model.provider} needs an API key: put it in a Secret and reference it here`,
    );
  const netpol = spec.networkPolicy;
  if (model && model.provider !== "echo" && netpol.enabled && !netpol.egress?.length)
    f.warn(
      "spec.networkPolicy.egress",
      `empty; the agent's NetworkPolicy (on by default) lets it reach only DNS and its workspace's sandboxes, ` +
        `not provider ${model.provider}: list its API (e.g. {cidr: 0.0.0.0/0, ports: [443]}) or set spec.networkPolicy.enabled=false`,
    );
  return f.verdict();
};
