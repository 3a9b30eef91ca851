// Commands in a workspace through the gateway, mounted at /v1/namespaces/{ns}/workspaces:
//
//   POST   {name}/exec            ExecRequest (argv, env, cwd, timeoutSeconds, stdin)
//            Accept: application/x-ndjson   one GatewayExecRecord per line
//            Accept: text/event-stream      one SSE event per record (event: its type)
//            otherwise                      one ExecResult when the command is done
//   DELETE {name}/exec/{execId}   cancels a running command (the stream then ends with `exit`)
//
// Both need `create workspaces/exec`. A stream starts with a `started` record carrying the
// exec id (also the X-Exec-Id header), then stdout/stderr chunks, then `exit` (or `error`).
// A client that goes away cancels the command: the sandbox kills its whole process tree.
// DELETE works on any gateway replica: the exec id goes to the sandbox with the command
// (contracts/sandbox.ts, EXEC_ID_HEADER) and the replica that takes the DELETE asks the
// workspace's sandbox to stop it; the replica that runs the stream then ends it with `exit`.
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { z } from "zod";
import { EXEC_ID_PATTERN, ExecRequest, type ExecStreamRecord } from "../../contracts/sandbox.ts";
import { problemOf } from "../problem.ts";
import {
  allow,
  audited,
  clientGone,
  DEFAULT_MAX_EXEC_SECONDS,
  type DataPlaneDeps,
  fromPod,
  identityOf,
  params,
  parseBody,
  recordStream,
  streamFormat,
} from "./common.ts";
import { workspaceTarget } from "./targets.ts";

/** What a streamed exec sends: the sandbox's records, after one `started` record. */
export type GatewayExecRecord = { type: "started"; execId: string } | ExecStreamRecord;

export function execRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });
  const maxSeconds = deps.maxExecSeconds ?? DEFAULT_MAX_EXEC_SECONDS;
  const body = ExecRequest.extend({ timeoutSeconds: z.number().positive().max(maxSeconds).optional() });

  router.post("/:name/exec", async (req, res) => {
    const { namespace, name } = params(req);
    const request = parseBody(body, req.body);
    await allow(deps, res, { verb: "create", resource: "workspaces", subresource: "exec", namespace, name });
    const who = identityOf(res);
    const format = streamFormat(req);
    await audited(deps, req, res, { verb: "exec", kind: "Workspace", namespace, name }, async (note) => {
      note(`program=${request.command[0]}`);
      const t = await workspaceTarget(deps, namespace, name, "exec", who.user);
      const execId = randomUUID();
      const signal = clientGone(res);
      res.setHeader("x-exec-id", execId);
      if (!format) {
        const result = await t.client.exec(t.id, request, { signal, execId }).catch((err: unknown) => {
          throw fromPod(err, "workspace's sandbox");
        });
        note(`exitCode=${result.exitCode}`);
        res.json(result);
        return;
      }
      let send: ((r: GatewayExecRecord) => boolean) | undefined;
      try {
        const onStart = () => void (send = start(res, format, execId));
        for await (const record of t.client.execStream(t.id, request, { signal, onStart, execId })) {
          send ??= start(res, format, execId);
          send(record);
          if (record.type === "exit")
            note(`exitCode=${record.exitCode}${record.signal ? ` signal=${record.signal}` : ""}`);
        }
      } catch (err) {
        if (!send) throw fromPod(err, "workspace's sandbox");
        if (res.destroyed) return; // the client went away: the sandbox kills the command
        const detail = "the sandbox stopped answering while the command ran";
        note(detail);
        send({ type: "error", detail });
      }
      if (!send) start(res, format, execId);
      res.end();
    });
  });

  router.delete("/:name/exec/:execId", async (req, res) => {
    const { namespace, name } = params(req);
    const execId = String(req.params.execId);
    if (!EXEC_ID_PATTERN.test(execId))
      throw problemOf(400, "execId must be the id a started exec answered with");
    await allow(deps, res, { verb: "create", resource: "workspaces", subresource: "exec", namespace, name });
    const who = identityOf(res);
    await audited(
      deps,
      req,
      res,
      { verb: "exec.cancel", kind: "Workspace", namespace, name },
      async (note) => {
        note(`execId=${execId}`);
        const t = await workspaceTarget(deps, namespace, name, "exec", who.user);
        const cancelled = await t.client.cancelExec(t.id, execId).catch((err: unknown) => {
          throw fromPod(err, "workspace's sandbox");
        });
        if (!cancelled)
          throw problemOf(404, `no running command ${execId} in Workspace ${namespace}/${name} (it ended)`);
        res.status(202).json({ execId, cancelled: true });
      },
    );
  });

  return router;
}

function start(res: Parameters<typeof recordStream>[0], format: "ndjson" | "sse", execId: string) {
  const write = recordStream<GatewayExecRecord>(res, format);
  write({ type: "started", execId });
  return write;
}
