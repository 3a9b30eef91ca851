// The sandboxes of a fleet with their load, for dashboards (the console's fleet grid), mounted
// at /v1/namespaces/{ns}/sandboxfleets:
//
//   GET {name}/sandboxes   SandboxList: each sandbox pod of the fleet, ready or not, draining
//                          or not, and what its runtime reports on GET /status (cpu and
//                          memory as fractions of its limits, workspaces held) and GET
//                          /workspaces (which of the namespace's Workspaces it holds, and
//                          their owners). Needs `get sandboxfleets`; a pod that does not answer
//                          is listed with the error. Audited like every data-plane call.
//
// Pods are found with the fleet's selector and read with the gateway's own identity after the
// caller's review; only pods whose owner chain leads to the fleet (as the operator checks it)
// are called, each with a token of scope `status` for that one pod.
import { Router } from "express";
import type { SandboxFleet } from "../../api/v1alpha1/index.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import { Audience } from "../../contracts/tokens.ts";
import { isNotFound, type KubeObject } from "../../lib/kube/client.ts";
import { sandboxPodProblem } from "../../lib/kube/owners.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
import { allow, audited, type DataPlaneDeps, identityOf, params } from "./common.ts";
import { tokenFor } from "./targets.ts";
import { errorMessage } from "../../lib/log.ts";

/** How long one sandbox may take to report its status. */
const STATUS_TIMEOUT_MS = 3000;
const DRAINING = "agentry.dev/draining";

type Pod = KubeObject & {
  status?: { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
};

export interface SandboxInfo {
  name: string;
  ready: boolean;
  draining: boolean;
  cpu?: number;
  memory?: number;
  workspaces?: number;
  maxWorkspaces?: number;
  /** The Workspaces of the fleet's namespace it holds, by name, in name order. */
  placed?: { name: string; ownerId: string | null }[];
  error?: string;
}

/** The Workspaces of `namespace` among a sandbox's workspace ids ("<namespace>.<name>"). */
export function placedIn(
  namespace: string,
  held: { id: string; ownerId: string | null }[],
): { name: string; ownerId: string | null }[] {
  const prefix = `${namespace}.`;
  return held
    .filter((w) => w.id.startsWith(prefix))
    .map((w) => ({ name: w.id.slice(prefix.length), ownerId: w.ownerId }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function sandboxesRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });
  router.get("/:name/sandboxes", async (req, res) => {
    const { namespace, name } = params(req);
    await allow(deps, res, { verb: "get", resource: "sandboxfleets", namespace, name });
    const record = { verb: "sandboxes.list", kind: "SandboxFleet", namespace, name };
    await audited(deps, req, res, record, async (note) => {
      const items = await sandboxesOf(deps, namespace, name, identityOf(res).user);
      note(`sandboxes=${items.length}`);
      res.json({ items });
    });
  });
  router.all("/:name/sandboxes", methodNotAllowed(["GET"]));
  return router;
}

async function sandboxesOf(
  deps: DataPlaneDeps,
  namespace: string,
  name: string,
  caller: string,
): Promise<SandboxInfo[]> {
  let fleet: SandboxFleet & KubeObject;
  try {
    fleet = await deps.kube.get<SandboxFleet & KubeObject>(
      "agentry.dev/v1alpha1",
      "SandboxFleet",
      namespace,
      name,
    );
  } catch (err) {
    if (isNotFound(err)) throw problemOf(404, `SandboxFleet ${namespace}/${name} not found`);
    throw err;
  }
  const selector = fleet.status?.selector;
  const deploymentName = fleet.status?.deploymentName;
  if (!selector || !deploymentName) return [];
  const [pods, replicaSets, deployment] = await Promise.all([
    deps.kube.list<Pod>("v1", "Pod", namespace, { labelSelector: selector }),
    deps.kube.list<KubeObject>("apps/v1", "ReplicaSet", namespace, { labelSelector: selector }),
    deps.kube.get<KubeObject>("apps/v1", "Deployment", namespace, deploymentName).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    }),
  ]);
  const port = fleet.spec.template.port ?? 8080;
  return Promise.all(
    pods.items
      .filter((p) => !p.metadata.deletionTimestamp)
      .sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""))
      .map(async (pod): Promise<SandboxInfo> => {
        const podName = pod.metadata.name!;
        const info: SandboxInfo = {
          name: podName,
          ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
          draining: pod.metadata.annotations?.[DRAINING] !== undefined,
        };
        const problem = sandboxPodProblem(pod, fleet.metadata.uid, deployment, replicaSets.items);
        if (problem) return { ...info, error: `not called: ${problem.reason}` };
        const address = deps.addresses.addressOf(pod, port);
        if (!address) return { ...info, error: "no address yet" };
        const aud = Audience.pod(namespace, podName);
        const client = new SandboxClient({
          baseUrl: `http://${address}`,
          token: () => tokenFor(deps, aud, "status", caller),
          timeoutMs: STATUS_TIMEOUT_MS,
        });
        try {
          const [s, held] = await Promise.all([client.status(), client.listWorkspaces()]);
          return {
            ...info,
            draining: info.draining || s.draining,
            cpu: s.cpu,
            memory: s.memory,
            workspaces: s.workspaces,
            maxWorkspaces: s.maxWorkspaces,
            placed: placedIn(namespace, held),
          };
        } catch (err) {
          return {
            ...info,
            error: `status unavailable: ${errorMessage(err)}`,
          };
        }
      }),
  );
}
