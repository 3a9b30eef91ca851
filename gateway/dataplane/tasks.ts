// Tasks to an agent through the gateway, mounted at /v1/namespaces/{ns}/agentruntimes:
//
//   POST {name}/tasks   TaskRequest → TaskResult, or (Accept: application/x-ndjson or
//                       text/event-stream) TaskStreamRecords: started, output, result|error.
//                       Needs `create agentruntimes/tasks`. Closing the stream cancels the task.
//   GET  {name}/tasks   TaskList, the agent's recent tasks where it keeps them (agentry's
//                       agent runtime does, in memory). Needs `get agentruntimes/tasks`.
//
// An agent that is not Ready answers 503 with its readinessReason, before anything is sent
// to it. An agent image that does not stream answers JSON; the gateway turns that into the
// same records.
import { Router } from "express";
import {
  TASK_STREAM_MEDIA_TYPE,
  TaskList,
  TaskRequest,
  TaskResult,
  type TaskStreamRecord,
  AgentPath,
} from "../../contracts/agent.ts";
import { problemOf } from "../problem.ts";
import {
  allow,
  audited,
  clientGone,
  type DataPlaneDeps,
  identityOf,
  params,
  parseBody,
  recordStream,
  streamFormat,
} from "./common.ts";
import { agentTarget, type AgentTarget } from "./targets.ts";
import { errorMessage } from "../../lib/log.ts";

/** Largest JSON answer read from an agent. */
const MAX_ANSWER_BYTES = 16 << 20;

async function callAgent(
  t: AgentTarget,
  method: "GET" | "POST",
  body: unknown,
  accept: string,
  signal: AbortSignal,
): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${t.baseUrl}${AgentPath.tasks}`, {
      method,
      redirect: "manual",
      headers: {
        authorization: `Bearer ${await t.token()}`,
        accept,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    throw problemOf(502, `the agent could not be reached: ${errorMessage(err)}`);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => undefined);
    throw problemOf(502, `the agent answered a redirect (${res.status}), which is never followed`);
  }
  return res;
}

async function readJson(res: Response): Promise<unknown> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MAX_ANSWER_BYTES) throw problemOf(502, "the agent's answer is too large");
  const text = await res.text();
  if (text.length > MAX_ANSWER_BYTES) throw problemOf(502, "the agent's answer is too large");
  try {
    return JSON.parse(text);
  } catch {
    throw problemOf(502, `the agent answered ${res.status} with something that is not JSON`);
  }
}

/** An agent's error answer as a problem: its 4xx, 429, 503 and 504 kept; others 502. */
async function agentProblem(res: Response): Promise<Error> {
  const body = (await readJson(res).catch(() => ({}))) as { detail?: string };
  const detail = body.detail ?? `HTTP ${res.status}`;
  const kept = [400, 404, 409, 413, 422, 429, 503, 504].includes(res.status);
  const retry = res.headers.get("retry-after");
  return problemOf(
    kept ? res.status : 502,
    kept ? `the agent: ${detail}` : `the agent failed (${res.status}): ${detail}`,
    {
      ...(retry ? { headers: { "retry-after": retry } } : {}),
    },
  );
}

export function tasksRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });

  router.post("/:name/tasks", async (req, res) => {
    const { namespace, name } = params(req);
    const task = parseBody(TaskRequest, req.body);
    await allow(deps, res, {
      verb: "create",
      resource: "agentruntimes",
      subresource: "tasks",
      namespace,
      name,
    });
    const format = streamFormat(req);
    await audited(
      deps,
      req,
      res,
      { verb: "tasks.create", kind: "AgentRuntime", namespace, name },
      async (note) => {
        const t = await agentTarget(deps, namespace, name, identityOf(res).user, { wake: true });
        const signal = clientGone(res);
        const answer = await callAgent(
          t,
          "POST",
          task,
          format ? `${TASK_STREAM_MEDIA_TYPE}, application/json` : "application/json",
          signal,
        );
        if (answer.status >= 400) throw await agentProblem(answer);
        const type = answer.headers.get("content-type") ?? "";
        if (!format) {
          const result = TaskResult.safeParse(await readJson(answer));
          if (!result.success) throw problemOf(502, "the agent's answer is not a TaskResult");
          note(`task=${result.data.id}`);
          return void res.json(result.data);
        }
        const send = recordStream<TaskStreamRecord>(res, format);
        if (!type.includes(TASK_STREAM_MEDIA_TYPE)) {
          // An agent that answers whole: the same records, at once.
          const result = TaskResult.safeParse(await readJson(answer));
          if (!result.success) {
            send({ type: "error", status: 502, detail: "the agent's answer is not a TaskResult" });
          } else {
            note(`task=${result.data.id}`);
            send({ type: "started", id: result.data.id });
            send({ type: "output", data: result.data.output });
            send({ type: "result", ...result.data });
          }
          return void res.end();
        }
        // Relay whole lines as records (SSE needs them one by one).
        const decoder = new TextDecoder();
        let buffered = "";
        try {
          for await (const chunk of answer.body as AsyncIterable<Uint8Array>) {
            buffered += decoder.decode(chunk, { stream: true });
            if (buffered.length > MAX_ANSWER_BYTES) throw new Error("a record is too large");
            const lines = buffered.split("\n");
            buffered = lines.pop()!;
            for (const line of lines) {
              if (!line.trim()) continue;
              const record = JSON.parse(line) as TaskStreamRecord;
              if (record.type === "started") note(`task=${record.id}`);
              send(record);
            }
          }
        } catch (err) {
          if (res.destroyed) return; // the client left: the agent cancels the task
          send({ type: "error", status: 502, detail: `the agent's stream broke: ${String(err)}` });
        }
        res.end();
      },
    );
  });

  router.get("/:name/tasks", async (req, res) => {
    const { namespace, name } = params(req);
    await allow(deps, res, { verb: "get", resource: "agentruntimes", subresource: "tasks", namespace, name });
    await audited(deps, req, res, { verb: "tasks.list", kind: "AgentRuntime", namespace, name }, async () => {
      const t = await agentTarget(deps, namespace, name, identityOf(res).user);
      const answer = await callAgent(t, "GET", undefined, "application/json", AbortSignal.timeout(10_000));
      if (answer.status === 404 || answer.status === 405) {
        await answer.body?.cancel().catch(() => undefined);
        throw problemOf(
          501,
          `AgentRuntime ${namespace}/${name} does not keep a list of its tasks (its image answers ${answer.status} to GET ${AgentPath.tasks})`,
        );
      }
      if (answer.status >= 400) throw await agentProblem(answer);
      const list = TaskList.safeParse(await readJson(answer));
      if (!list.success) throw problemOf(502, "the agent's task list is not a TaskList");
      res.json(list.data);
    });
  });

  return router;
}
