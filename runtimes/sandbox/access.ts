// Which token each route of the sandbox API needs (contracts/sandbox.ts): a pure function of
// the method, the path and who this sandbox is. The probes are open; what concerns the pod
// (load, the list of workspaces, drain, placing and removing workspaces) needs a token for
// this pod; a workspace's files and commands take a token for that workspace or for the pod.
import { SandboxPath } from "../../contracts/sandbox.ts";
import { Audience, type Access, type TokenScope } from "../../contracts/tokens.ts";

/** This sandbox's pod (from the downward API); undefined outside a pod. */
export interface PodIdentity {
  namespace: string;
  name: string;
}

/** "open" for the probes, else the audiences and scope a token must have. */
export function accessFor(method: string, path: string, pod: PodIdentity | undefined): Access | "open" {
  if (path === SandboxPath.healthz || path === SandboxPath.readyz) return "open";
  const podAudiences = pod ? [Audience.pod(pod.namespace, pod.name)] : [];
  const forPod = (scope: TokenScope): Access => ({ audiences: podAudiences, scope });
  const parts = path.split("/").slice(1);
  const [first, second, third] = parts;
  if (first !== "workspaces" || second === undefined || second === "") {
    if (first === "drain" || first === "undrain" || first === "debug") return forPod("drain");
    // /status, GET /workspaces, and anything unknown (a 404 only for a caller with a token).
    return forPod("status");
  }
  let id: string | undefined;
  try {
    id = decodeURIComponent(second);
  } catch {
    id = undefined; // refused with 400 once the caller is known
  }
  const forWorkspace = (scope: TokenScope): Access => ({
    audiences: [...(id !== undefined ? [Audience.workspace(id)] : []), ...podAudiences],
    scope,
  });
  if (parts.length === 2)
    return method === "GET" || method === "HEAD" ? forWorkspace("files") : forPod("placement");
  if (third === "exec") return forWorkspace("exec");
  return forWorkspace("files");
}
