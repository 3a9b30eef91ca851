// Run-now for a Pipeline: POST /v1/namespaces/{ns}/pipelines/{name}/runs sets the
// agentry.dev/run-now annotation to the request id (as the caller, audited); the Pipeline
// controller starts the run. Answers 202 with the request id.
import { Router } from "express";
import { methodNotAllowed } from "../problem.ts";
import { PipelineKind, RUN_NOW_ANNOTATION } from "../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import type { Identity } from "../auth/identity.ts";
import { asCaller, type ResourceDeps } from "./resources.ts";
import { LAST_MODIFIED_BY } from "./validate.ts";
import { auditedWrite } from "./write.ts";

/** `listed`: the data plane serves GET on the same path (listing runs), so Allow names it too. */
export function runsRouter(deps: ResourceDeps, options: { listed?: boolean } = {}): Router {
  const router = Router({ mergeParams: true });
  router.post("/:name/runs", async (req, res) => {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const who = res.locals.identity as Identity;
    const requestId = res.locals.requestId as string;
    await auditedWrite(
      deps,
      req,
      res,
      { verb: "run", kind: PipelineKind.kind, namespace, name },
      async () => {
        const target = {
          apiVersion: PipelineKind.apiVersion,
          kind: PipelineKind.kind,
          metadata: { namespace, name },
        };
        const patched = await asCaller(deps.kube, res).mergePatch<KubeObject>(target, {
          metadata: { annotations: { [RUN_NOW_ANNOTATION]: requestId, [LAST_MODIFIED_BY]: who.user } },
        });
        deps.cache?.wrote(PipelineKind.kind, patched);
        return {
          status: 202,
          body: {
            requestId,
            pipeline: { namespace, name, uid: patched.metadata.uid },
            message: "run requested; the operator starts it and reports it in the Pipeline's status",
          },
          headers: {},
        };
      },
    );
  });
  router.all("/:name/runs", methodNotAllowed(options.listed ? ["GET", "POST"] : ["POST"]));
  return router;
}
