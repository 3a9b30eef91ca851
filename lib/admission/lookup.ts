// The Lookup of the webhook and the gateway: direct reads from the apiserver (the gateway's
// as the caller), each with a time limit below the webhook's timeoutSeconds. No cache on purpose: `kubectl apply -f dir/` creates a
// Secret or a fleet and, a moment later, what refers to it; a lagging cache would deny that.
import type { AgentRuntime, SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";
import { isNotFound, type KubeClient, type KubeList, type KubeObject } from "../kube/client.ts";
import type { Lookup } from "./index.ts";

const AGENTRY = "agentry.dev/v1alpha1";

/**
 * With `checkSecrets` false the webhook never reads Secrets (least privilege): every Secret
 * reference is taken as present, and the kubelet reports a missing one when the Pod starts.
 */
export function kubeLookup(client: KubeClient, timeoutMs: number, checkSecrets = true): Lookup {
  const get = async <T>(
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
  ): Promise<T | undefined> => {
    const path = client.pathOf({ apiVersion, kind, metadata: { namespace, name } });
    try {
      return await client.request<T>("GET", path, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  return {
    async secretKeys(namespace, name) {
      if (!checkSecrets) return null;
      const s = await get<KubeObject & { data?: Record<string, string> }>("v1", "Secret", namespace, name);
      return s && Object.keys(s.data ?? {});
    },
    workspace: (namespace, name) => get<Workspace>(AGENTRY, "Workspace", namespace, name),
    sandboxFleet: (namespace, name) => get<SandboxFleet>(AGENTRY, "SandboxFleet", namespace, name),
    agentRuntime: (namespace, name) => get<AgentRuntime>(AGENTRY, "AgentRuntime", namespace, name),
    async workspacesOfFleet(namespace, fleet) {
      // All of the namespace's workspaces, not the agentry.dev/fleet label: workspaces made
      // before the webhook was installed do not carry it.
      const items: Workspace[] = [];
      let token: string | undefined;
      do {
        const page = await client.request<KubeList<Workspace>>(
          "GET",
          client.collectionPath(AGENTRY, "Workspace", namespace),
          { query: { limit: 500, continue: token }, signal: AbortSignal.timeout(timeoutMs) },
        );
        items.push(...page.items.filter((w) => w.spec.fleetRef.name === fleet));
        token = page.metadata.continue || undefined;
      } while (token);
      return items;
    },
  };
}
