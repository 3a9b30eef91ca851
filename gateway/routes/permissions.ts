// What the caller may do in a namespace, so a dashboard shows only the controls that will
// work (the console disables pin/unpin, run-now, suspend, uploads, exec and tasks otherwise,
// saying why):
//
//   GET /v1/namespaces/{ns}/permissions[?for=<plural>[/<name>]]
//
// Each action below is one SelfSubjectAccessReview made AS THE CALLER (impersonated, like the
// REST routes), so every authorizer of the apiserver answers just as it will for the request
// itself. `for` narrows the question to one kind's actions, and with a name to that one object
// (a Role limited by resourceNames then counts). An answer is advice for the screen: each
// route still decides for itself. Audited like a data-plane read.
import { Router, type Request } from "express";
import { KINDS } from "../../api/v1alpha1/index.ts";
import { rbacOf, type AccessQuestion } from "../auth/access.ts";
import type { Identity } from "../auth/identity.ts";
import { audited, queryOne } from "../dataplane/common.ts";
import { methodNotAllowed, problemOf } from "../problem.ts";
import { asCaller, type ResourceDeps } from "./resources.ts";

export interface PermissionAction {
  verb: string;
  /** Plural of an agentry.dev kind. */
  resource: string;
  subresource?: string;
  /** What the action lets a caller do, for the document and a screen's reason. */
  does: string;
  /** Asked without the object's name even when one is given (a create names no object yet). */
  unnamed?: boolean;
}

/** The actions a dashboard asks about, by the name the answer gives them. */
export const PERMISSION_ACTIONS = {
  createWorkspace: { verb: "create", resource: "workspaces", does: "create workspaces", unnamed: true },
  suspendWorkspace: { verb: "patch", resource: "workspaces", does: "suspend and resume workspaces" },
  readFiles: {
    verb: "get",
    resource: "workspaces",
    subresource: "files",
    does: "list, view and download a workspace's files",
  },
  writeFiles: {
    verb: "update",
    resource: "workspaces",
    subresource: "files",
    does: "upload and delete a workspace's files",
  },
  exec: { verb: "create", resource: "workspaces", subresource: "exec", does: "run commands in workspaces" },
  scaleFleet: { verb: "patch", resource: "sandboxfleets", does: "pin and unpin a fleet's size" },
  sendTask: {
    verb: "create",
    resource: "agentruntimes",
    subresource: "tasks",
    does: "send tasks to agents",
  },
  readTasks: {
    verb: "get",
    resource: "agentruntimes",
    subresource: "tasks",
    does: "read an agent's recent tasks",
  },
  runPipeline: { verb: "patch", resource: "pipelines", does: "start a pipeline run now" },
  readLogs: { verb: "get", resource: "pipelines", subresource: "logs", does: "read a pipeline run's logs" },
} as const satisfies Record<string, PermissionAction>;

export type PermissionName = keyof typeof PERMISSION_ACTIONS;

export interface PermissionAnswer {
  allowed: boolean;
  verb: string;
  resource: string;
  subresource?: string;
  /** Why: the authorizer's reason when allowed; when not, who may not do what, and how to get it. */
  reason: string;
}

const PLURALS = KINDS.map((k) => k.plural);

interface ReviewStatus {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** What `for` may be: a kind's plural, or plural/name (the name as the apiserver allows it). */
export const PERMISSIONS_FOR_PATTERN = `^(${PLURALS.join("|")})(/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$`;
const FOR = new RegExp(PERMISSIONS_FOR_PATTERN);

/** The kind and object the query asks about (400 when `for` is not one). */
function target(req: Request): { resource?: string; name?: string } {
  const given = queryOne(req, "for");
  if (given === undefined) return {};
  if (!FOR.test(given))
    throw problemOf(
      400,
      `query parameter for must be a kind's plural (${PLURALS.join(", ")}), or plural/name of one object`,
    );
  const [resource, name] = given.split("/") as [string, string | undefined];
  return { resource, ...(name ? { name } : {}) };
}

export function permissionsRouter(deps: Pick<ResourceDeps, "kube" | "store" | "log">): Router {
  const router = Router({ mergeParams: true });
  router.get("/", async (req, res) => {
    const namespace = String((req.params as Record<string, string>).namespace);
    const { resource, name } = target(req);
    const who = res.locals.identity as Identity;
    const client = asCaller(deps.kube, res);
    const asked = Object.entries(PERMISSION_ACTIONS).filter(
      ([, a]) => resource === undefined || a.resource === resource,
    ) as [PermissionName, PermissionAction][];
    const record = { verb: "permissions", kind: "Namespace", namespace, name: name ?? namespace };
    await audited(deps, req, res, record, async (note) => {
      if (resource) note(`resource=${resource}`);
      const answers = await Promise.all(
        asked.map(async ([action, a]): Promise<[PermissionName, PermissionAnswer]> => {
          const q: AccessQuestion = {
            verb: a.verb,
            resource: a.resource,
            namespace,
            ...(a.subresource ? { subresource: a.subresource } : {}),
            ...(name && !a.unnamed ? { name } : {}),
          };
          const r = await client.request<ReviewStatus>(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
              body: {
                apiVersion: "authorization.k8s.io/v1",
                kind: "SelfSubjectAccessReview",
                spec: {
                  resourceAttributes: {
                    group: "agentry.dev",
                    resource: q.resource,
                    verb: q.verb,
                    namespace,
                    ...(q.subresource ? { subresource: q.subresource } : {}),
                    ...(q.name ? { name: q.name } : {}),
                  },
                },
              },
            },
          );
          const allowed = r.status?.allowed === true;
          const said = [r.status?.reason, r.status?.evaluationError].filter(Boolean).join("; ");
          const reason = allowed
            ? said || `${who.user} may ${rbacOf(q)}`
            : `${who.user} may not ${rbacOf(q)}${q.name ? ` on ${q.name}` : ""} in namespace ${namespace}, which it needs to ${a.does}${said ? `: ${said}` : ""}`;
          return [
            action,
            {
              allowed,
              verb: a.verb,
              resource: a.resource,
              ...(a.subresource ? { subresource: a.subresource } : {}),
              reason,
            },
          ];
        }),
      );
      res.json({
        namespace,
        user: who.user,
        ...(resource ? { resource } : {}),
        ...(name ? { name } : {}),
        actions: Object.fromEntries(answers),
      });
    });
  });
  router.all("/", methodNotAllowed(["GET"]));
  return router;
}
