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
// The registry of running commands is per gateway replica: DELETE must reach the replica
// that runs the stream (closing the stream works everywhere).
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { z } from "zod";
import { ExecRequest, type ExecStreamRecord } from "../../contracts/sandbox.ts";
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

const EXEC_ID = /^[0-9a-f-]{36}$/;

interface Running {
  namespace: string;
  workspace: string;
  user: string;
  cancel: AbortController;
}

export function execRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });
  const maxSeconds = deps.maxExecSeconds ?? DEFAULT_MAX_EXEC_SECONDS;
  const body = ExecRequest.extend({ timeoutSeconds: z.number().positive().max(maxSeconds).optional() });
  const running = new Map<string, Running>();

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
      const cancel = new AbortController();
      running.set(execId, { namespace, workspace: name, user: who.user, cancel });
      const signal = AbortSignal.any([cancel.signal, clientGone(res)]);
      res.setHeader("x-exec-id", execId);
      try {
        if (!format) {
          const result = await t.client.exec(t.id, request, { signal }).catch((err: unknown) => {
            if (cancel.signal.aborted) throw problemOf(409, `command ${execId} was cancelled`);
            throw fromPod(err, "workspace's sandbox");
          });
          note(`exitCode=${result.exitCode}`);
          res.json(result);
          return;
        }
        let send: ((r: GatewayExecRecord) => boolean) | undefined;
        try {
          const onStart = () => void (send = start(res, format, execId));
          for await (const record of t.client.execStream(t.id, request, { signal, onStart })) {
            send ??= start(res, format, execId);
            send(record);
            if (record.type === "exit")
              note(`exitCode=${record.exitCode}${record.signal ? ` signal=${record.signal}` : ""}`);
          }
        } catch (err) {
          if (!send) throw fromPod(err, "workspace's sandbox");
          if (res.destroyed) return; // the client went away: the sandbox kills the command
          const detail = cancel.signal.aborted
            ? "the command was cancelled (DELETE)"
            : "the sandbox stopped answering while the command ran";
          note(detail);
          send({ type: "error", detail });
        }
        send ??= start(res, format, execId);
        res.end();
      } finally {
        running.delete(execId);
      }
    });
  });

  router.delete("/:name/exec/:execId", async (req, res) => {
    const { namespace, name } = params(req);
    const execId = String(req.params.execId);
    if (!EXEC_ID.test(execId)) throw problemOf(400, "execId must be the id a started exec answered with");
    await allow(deps, res, { verb: "create", resource: "workspaces", subresource: "exec", namespace, name });
    await audited(deps, req, res, { verb: "exec.cancel", kind: "Workspace", namespace, name }, (note) => {
      note(`execId=${execId}`);
      const r = running.get(execId);
      if (!r || r.namespace !== namespace || r.workspace !== name)
        throw problemOf(
          404,
          `no running command ${execId} in Workspace ${namespace}/${name} on this gateway replica (it ended, or runs on another replica: close its stream instead)`,
        );
      r.cancel.abort(new Error(`cancelled by ${identityOf(res).user}`));
      res.status(202).json({ execId, cancelled: true });
      return Promise.resolve();
    });
  });

  return router;
}

function start(res: Parameters<typeof recordStream>[0], format: "ndjson" | "sse", execId: string) {
  const write = recordStream<GatewayExecRecord>(res, format);
  write({ type: "started", execId });
  return write;
}
