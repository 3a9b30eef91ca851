// The data plane's part of the OpenAPI document (gateway/dataplane/*): paths and schemas,
// the schemas generated from the same zod contracts the sandbox and agent runtimes validate
// with. openapi.ts merges them into the document.
import { z } from "zod";
import { TaskList, TaskRequest, TaskResult, TaskStreamRecord } from "../contracts/agent.ts";
import { DirListing, ExecRequest, ExecResult, ExecStreamRecord } from "../contracts/sandbox.ts";
import { DEFAULT_MAX_EXEC_SECONDS } from "./dataplane/common.ts";

type Json = Record<string, unknown>;

const schema = (s: z.ZodType, io: "input" | "output"): Json => {
  const out = z.toJSONSchema(s, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  delete out.$schema;
  return out;
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Error answers, each an RFC 9457 problem. */
const problems = (...codes: number[]): Json =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      {
        description: PROBLEM_TEXT[c] ?? `HTTP ${c} problem.`,
        content: { "application/problem+json": { schema: ref("Problem") } },
      },
    ]),
  );

const PROBLEM_TEXT: Record<number, string> = {
  400: "Bad input: a path outside the workspace, an invalid body or query parameter.",
  401: "No or an invalid bearer token.",
  403: "RBAC does not grant the caller the verb on the subresource; the problem names both (`verb`, `resource`, `subresource`).",
  404: "The object (or file, run, command) does not exist.",
  409: "The workspace is not placed or is suspended by its spec (the detail says why), the run has no pod, or what the workspace holds is in the way (a file where a directory is asked for, a cwd that does not exist).",
  413: "The upload is larger than the gateway's limit (--max-upload-bytes) or the sandbox's.",
  416: "The range lies outside the file; Content-Range names its size.",
  429: "The caller's rate limit; retry after Retry-After seconds.",
  501: "The agent does not keep a list of its tasks.",
  502: "The pod could not be reached or failed.",
  503: "The agent is not Ready (`phase`, `readinessReason`), a workspace suspended for idleness is still waking up after the gateway's --wake-wait (the call woke it; retry after Retry-After seconds), or the audit log or the signing key is unavailable.",
};

const NAME_CHAR = "[ -.0-~]"; // printable ASCII but "/"
const NOT_DOT = "[ -\\-0-~]"; // and not "." either
const SEGMENT = `(?:${NOT_DOT}${NAME_CHAR}{0,254}|\\.${NOT_DOT}${NAME_CHAR}{0,253}|\\.\\.${NAME_CHAR}{1,253})`;
export const PATH_PATTERN = `^${SEGMENT}(?:/${SEGMENT})*$`;

const pathParam = (required: boolean, what: string) => ({
  name: "path",
  in: "query",
  required,
  description: `${what}, relative to the workspace: no leading "/", no "..", "." or empty segments.`,
  // What the gateway and the sandbox accept, narrowed to printable ASCII (one byte a character,
  // so the 255-byte name and 4096-byte path limits read as lengths): names of 1 to 255
  // characters, none "." or "..", joined by "/".
  schema: { type: "string", minLength: 1, maxLength: 4096, pattern: PATH_PATTERN },
});
const streamed = (record: string, what: string) => ({
  "application/json": { schema: ref(what) },
  // A Media Type Object has no description: the schema carries it.
  "application/x-ndjson": {
    schema: { ...ref(record), description: `One ${record} per line.` },
  },
  "text/event-stream": {
    schema: {
      type: "string",
      description: `Server-Sent Events: one event per ${record}, named by its type, the record as data.`,
    },
  },
});

/** The ExecRequest schema, its timeoutSeconds bounded by the gateway's --max-exec. */
function execRequestSchema(maxExecSeconds: number): Json {
  const base = schema(ExecRequest, "input") as Json & { properties: Record<string, Json> };
  return {
    ...base,
    properties: {
      ...base.properties,
      timeoutSeconds: {
        ...base.properties.timeoutSeconds,
        maximum: maxExecSeconds,
        description: `Seconds before the command is killed; at most the gateway's --max-exec (${maxExecSeconds} s here), more is refused with 400.`,
      },
    },
    description: "A command to run in a workspace (argv, never a shell).",
  };
}

export function dataPlaneSchemas(maxExecSeconds = DEFAULT_MAX_EXEC_SECONDS): Json {
  const fraction = (what: string) => ({ type: "number", minimum: 0, maximum: 1, description: what });
  return {
    SandboxList: {
      type: "object",
      required: ["items"],
      description: "The sandbox pods of a fleet, in name order, with what each reports about its load.",
      properties: {
        items: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "ready", "draining"],
            properties: {
              name: { type: "string", description: "The sandbox pod." },
              ready: { type: "boolean", description: "The pod's Ready condition is True." },
              draining: { type: "boolean", description: "The sandbox takes no new workspaces." },
              cpu: fraction("CPU use as a fraction of the limit."),
              memory: fraction("Memory use as a fraction of the limit."),
              workspaces: { type: "integer", minimum: 0, description: "Workspaces it holds." },
              maxWorkspaces: { type: "integer", minimum: 1, description: "Workspaces it may hold." },
              placed: {
                type: "array",
                description: "The Workspaces of the fleet's namespace it holds, in name order.",
                items: {
                  type: "object",
                  required: ["name", "ownerId"],
                  properties: {
                    name: { type: "string", description: "The Workspace." },
                    ownerId: { type: ["string", "null"], description: "Its spec.ownerId, if any." },
                  },
                },
              },
              error: {
                type: "string",
                description: "Why its load is unknown (not answering, no address yet).",
              },
            },
          },
        },
      },
    },
    ExecRequest: execRequestSchema(maxExecSeconds),
    ExecResult: schema(ExecResult, "output"),
    GatewayExecRecord: {
      description:
        "One record of a streamed command: `started` (with the exec id for DELETE), stdout and stderr chunks, then `exit` or `error`.",
      oneOf: [
        {
          type: "object",
          required: ["type", "execId"],
          properties: { type: { const: "started" }, execId: { type: "string", format: "uuid" } },
        },
        ...((schema(ExecStreamRecord, "output").oneOf ?? schema(ExecStreamRecord, "output").anyOf) as Json[]),
      ],
    },
    ExecCancelled: {
      type: "object",
      required: ["execId", "cancelled"],
      properties: { execId: { type: "string" }, cancelled: { type: "boolean" } },
    },
    DirListing: schema(DirListing, "output"),
    FileWritten: {
      type: "object",
      required: ["path", "bytes", "created"],
      properties: { path: { type: "string" }, bytes: { type: "integer" }, created: { type: "boolean" } },
    },
    TaskRequest: schema(TaskRequest, "input"),
    TaskResult: schema(TaskResult, "output"),
    TaskStreamRecord: schema(TaskStreamRecord, "output"),
    TaskList: schema(TaskList, "output"),
    RunList: {
      type: "object",
      required: ["items"],
      properties: {
        items: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "job", "phase", "pods"],
            properties: {
              name: { type: "string" },
              job: { type: "string" },
              phase: { enum: ["Pending", "Running", "Succeeded", "Failed"] },
              reason: { type: "string" },
              message: { type: "string" },
              startTime: { type: "string", format: "date-time" },
              completionTime: { type: "string", format: "date-time" },
              pods: {
                type: "array",
                items: {
                  type: "object",
                  required: ["name", "phase", "containers"],
                  properties: {
                    name: { type: "string" },
                    phase: { type: "string" },
                    containers: { type: "array", items: { type: "string" } },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}

/**
 * The data plane's paths. `params` are the document's own path parameters (openapi.ts), so a
 * namespace or an object's name is described, and checked, exactly as on its kind's routes.
 */
export function dataPlanePaths(params: { namespace: Json; name: (kind: string) => Json }): Json {
  const ns = params.namespace;
  const named = params.name;
  const ws = "/v1/namespaces/{namespace}/workspaces/{name}";
  const ar = "/v1/namespaces/{namespace}/agentruntimes/{name}";
  const pl = "/v1/namespaces/{namespace}/pipelines/{name}";
  const sbf = "/v1/namespaces/{namespace}/sandboxfleets/{name}";
  const files = { tags: ["Workspace data plane"] };
  const wsParams = [ns, named("Workspace")];
  return {
    [`${ws}/files`]: {
      parameters: wsParams,
      get: {
        ...files,
        operationId: "listWorkspaceFiles",
        summary: "List a directory of a workspace (RBAC: get workspaces/files)",
        parameters: [pathParam(false, "The directory (default: the workspace itself)")],
        responses: {
          "200": {
            description: "The directory's entries.",
            content: { "application/json": { schema: ref("DirListing") } },
          },
          ...problems(400, 401, 403, 404, 409, 429, 502, 503),
        },
      },
    },
    [`${ws}/files/content`]: {
      parameters: [...wsParams, pathParam(true, "The file")],
      get: {
        ...files,
        operationId: "readWorkspaceFile",
        summary: "Read a file, whole or one byte range (RBAC: get workspaces/files)",
        parameters: [
          {
            name: "Range",
            in: "header",
            required: false,
            description: "One range: bytes=first-last, bytes=first- or bytes=-suffix.",
            schema: { type: "string", pattern: "^bytes=\\d*-\\d*$" },
          },
        ],
        responses: {
          "200": {
            description: "The file.",
            content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
          },
          "206": {
            description: "The range asked for (Content-Range).",
            content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
          },
          ...problems(400, 401, 403, 404, 409, 416, 429, 502, 503),
        },
      },
      put: {
        ...files,
        operationId: "writeWorkspaceFile",
        summary: "Upload a file, streamed; parent directories are created (RBAC: update workspaces/files)",
        requestBody: {
          required: true,
          description: "The file's bytes, any content type; never parsed.",
          content: { "*/*": { schema: { type: "string", format: "binary" } } },
        },
        responses: {
          "200": {
            description: "Replaced.",
            content: { "application/json": { schema: ref("FileWritten") } },
          },
          "201": { description: "Created.", content: { "application/json": { schema: ref("FileWritten") } } },
          ...problems(400, 401, 403, 404, 409, 413, 429, 502, 503),
        },
      },
      delete: {
        ...files,
        operationId: "deleteWorkspaceFile",
        summary: "Delete a file or directory; succeeds when already gone (RBAC: update workspaces/files)",
        responses: {
          "204": { description: "Deleted." },
          ...problems(400, 401, 403, 404, 409, 429, 502, 503),
        },
      },
    },
    [`${ws}/files/archive`]: {
      parameters: wsParams,
      get: {
        ...files,
        operationId: "downloadWorkspaceDirectory",
        summary:
          "Download a directory as a tar stream; symbolic links are left out (RBAC: get workspaces/files)",
        parameters: [pathParam(false, "The directory (default: the whole workspace)")],
        responses: {
          "200": {
            description: "A tar archive.",
            content: { "application/x-tar": { schema: { type: "string", format: "binary" } } },
          },
          ...problems(400, 401, 403, 404, 409, 429, 502, 503),
        },
      },
    },
    [`${ws}/exec`]: {
      parameters: wsParams,
      post: {
        ...files,
        operationId: "execInWorkspace",
        summary:
          "Run a command; streamed (Accept: application/x-ndjson or text/event-stream) or one answer. Closing the stream kills it (RBAC: create workspaces/exec)",
        requestBody: { required: true, content: { "application/json": { schema: ref("ExecRequest") } } },
        responses: {
          "200": {
            description: "The result, or the stream of records (X-Exec-Id names the command).",
            headers: {
              "X-Exec-Id": { schema: { type: "string" }, description: "Id for DELETE .../exec/{execId}." },
            },
            content: streamed("GatewayExecRecord", "ExecResult"),
          },
          ...problems(400, 401, 403, 404, 409, 413, 415, 429, 502, 503),
        },
      },
    },
    [`${ws}/exec/{execId}`]: {
      parameters: [
        ...wsParams,
        {
          name: "execId",
          in: "path",
          required: true,
          description: "X-Exec-Id of a running command.",
          schema: { type: "string", format: "uuid" },
        },
      ],
      delete: {
        ...files,
        operationId: "cancelExec",
        summary: "Cancel a running command, through any gateway replica (RBAC: create workspaces/exec)",
        responses: {
          "202": {
            description:
              "Cancelled: its process tree is killed and its stream ends with an exit record (signal SIGKILL).",
            content: { "application/json": { schema: ref("ExecCancelled") } },
          },
          ...problems(400, 401, 403, 404, 409, 429, 503),
        },
      },
    },
    [`${ar}/tasks`]: {
      parameters: [ns, named("AgentRuntime")],
      post: {
        tags: ["AgentRuntime data plane"],
        operationId: "sendTask",
        summary: "Send a task to the agent; its answer streamed or whole (RBAC: create agentruntimes/tasks)",
        requestBody: { required: true, content: { "application/json": { schema: ref("TaskRequest") } } },
        responses: {
          "200": {
            description: "The answer, or the stream of records.",
            content: streamed("TaskStreamRecord", "TaskResult"),
          },
          ...problems(400, 401, 403, 404, 409, 413, 415, 429, 502, 503),
          "504": {
            description: "The model did not answer in time.",
            content: { "application/problem+json": { schema: ref("Problem") } },
          },
        },
      },
      get: {
        tags: ["AgentRuntime data plane"],
        operationId: "listTasks",
        summary:
          "The agent's recent tasks, newest first, where it keeps them (RBAC: get agentruntimes/tasks)",
        responses: {
          "200": {
            description: "Recent tasks.",
            content: { "application/json": { schema: ref("TaskList") } },
          },
          ...problems(400, 401, 403, 404, 429, 501, 502, 503),
        },
      },
    },
    [`${sbf}/sandboxes`]: {
      parameters: [ns, named("SandboxFleet")],
      get: {
        tags: ["SandboxFleet"],
        operationId: "listFleetSandboxes",
        summary: "The fleet's sandboxes with their load and draining state (RBAC: get sandboxfleets)",
        description:
          "Each sandbox pod of the fleet with what its runtime reports on its status endpoint: cpu and " +
          "memory as fractions of its limits (compare with the fleet's spec.pressure), workspaces held " +
          "(and which), draining. A sandbox that does not answer is listed with `error`. Audited.",
        responses: {
          "200": {
            description: "The sandboxes.",
            content: { "application/json": { schema: ref("SandboxList") } },
          },
          ...problems(400, 401, 403, 404, 429, 502, 503),
        },
      },
    },
    [`${pl}/runs`]: {
      get: {
        tags: ["Pipeline"],
        operationId: "listPipelineRuns",
        summary: "The pipeline's runs (Jobs), newest first, with status and pods; read as the caller",
        parameters: [ns, named("Pipeline")],
        responses: {
          "200": { description: "Runs.", content: { "application/json": { schema: ref("RunList") } } },
          ...problems(400, 401, 403, 404, 429, 502, 503),
        },
      },
    },
    [`${pl}/runs/{run}/logs`]: {
      parameters: [
        ns,
        named("Pipeline"),
        {
          name: "run",
          in: "path",
          required: true,
          description: "The run (its Job's name).",
          schema: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
        },
      ],
      get: {
        tags: ["Pipeline"],
        operationId: "readRunLogs",
        summary:
          "The log of a run's pod, from the apiserver's pod log API as the caller (RBAC: get pipelines/logs, and get pods/log)",
        parameters: [
          ...["follow", "timestamps", "previous"].map((n) => ({
            name: n,
            in: "query",
            required: false,
            description: `Pod log option ${n}.`,
            schema: { type: "boolean" },
          })),
          ...["tailLines", "sinceSeconds", "limitBytes"].map((n) => ({
            name: n,
            in: "query",
            required: false,
            description: `Pod log option ${n} (at most ten digits, as the gateway accepts; the apiserver takes sinceSeconds and limitBytes from 1).`,
            schema: { type: "integer", minimum: n === "tailLines" ? 0 : 1, maximum: 9_999_999_999 },
          })),
          {
            name: "container",
            in: "query",
            required: false,
            description: "Container (default: the pod's only one).",
            schema: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
          },
          {
            name: "pod",
            in: "query",
            required: false,
            description: "One of the run's pods (default: the newest).",
            schema: { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 253 },
          },
        ],
        responses: {
          "200": {
            description: "The log as text, streamed (X-Run-Pod names the pod).",
            headers: { "X-Run-Pod": { schema: { type: "string" } } },
            content: { "text/plain": { schema: { type: "string" } } },
          },
          ...problems(400, 401, 403, 404, 409, 429, 502, 503),
        },
      },
    },
  };
}
