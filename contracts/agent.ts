// The contract between the operator and an agent: what the operator gives an AgentRuntime's
// container and a Pipeline step's container, and the agent's HTTP API as far as others call
// it. runtimes/agent implements it; any other agent image may, and the operator reads
// /readyz leniently (any short lowercase status and a reason), since not every image is ours.
//
//   GET  /healthz                200 {"status":"ok"} while the process runs         open
//   GET  /readyz                 200 Readiness "ready"; else 503 with status        open; the reason
//                                (and reason, with a token allowing status)         only with a token
//   GET  /v1/info                the agent's settings and load                      scope status
//   POST /v1/tasks               TaskRequest → TaskResult (429 busy, 503 not ready,  scope tasks
//                                504 timeout); with `Accept: application/x-ndjson`
//                                a stream of TaskStreamRecord lines (closing it
//                                cancels the task)
//   GET  /v1/tasks               TaskList: the agent's recent tasks, newest first    scope tasks
//   POST /v1/workspace/exec      the sandbox's exec (contracts/sandbox.ts ExecRequest) scope exec
//   GET|POST /v1/workspace/files/{path}                                              scope files
//
// Tokens (contracts/tokens.ts) go in `Authorization: Bearer`, for the audience
// Audience.agent(namespace, name) or the agent's pod, Audience.pod(...); without one the
// answer is 401, with one that does not open the route 403. Errors are problems (problem.ts).
import { z } from "zod";

/** Environment of an AgentRuntime's agent container, set by the operator (spec.env does not override it). */
export const AgentEnv = {
  NAME: "AGENTRY_AGENT_NAME",
  NAMESPACE: "AGENTRY_NAMESPACE",
  PORT: "AGENTRY_PORT",
  /** host:port of /metrics (contracts/metrics.ts). */
  METRICS_ADDR: "AGENTRY_METRICS_ADDR",
  MODEL_PROVIDER: "AGENTRY_MODEL_PROVIDER",
  MODEL: "AGENTRY_MODEL",
  MODEL_ENDPOINT: "AGENTRY_MODEL_ENDPOINT",
  /** From spec.model.credentialsSecretRef (a secretKeyRef, never a value in the Pod spec). */
  MODEL_API_KEY: "AGENTRY_MODEL_API_KEY",
  /** With spec.workspaceRef: the Workspace's name and its URL on its sandbox (contracts/sandbox.ts workspaceUrl). */
  WORKSPACE: "AGENTRY_WORKSPACE",
  WORKSPACE_URL: "AGENTRY_WORKSPACE_URL",
  /**
   * With spec.workspaceRef: a file holding a token for the workspace (files, exec), mounted
   * from a Secret the operator refreshes; read before every call to the sandbox.
   */
  WORKSPACE_TOKEN_FILE: "AGENTRY_WORKSPACE_TOKEN_FILE",
} as const;

/**
 * Environment of every Pipeline step's container. For a step naming an AgentRuntime the
 * container is `agent dispatch`, which reads MANIFEST, STEP, STEP_INPUT (when set, it wins
 * over the step's input), AGENT_URL (the agent's in-cluster URL) and AGENT_TOKEN_FILE (a
 * file holding a token for that agent with scope tasks, mounted from a Secret the operator
 * refreshes; read before every attempt).
 */
export const StepEnv = {
  PIPELINE: "AGENTRY_PIPELINE",
  STEP: "AGENTRY_STEP",
  MANIFEST: "AGENTRY_MANIFEST",
  STEP_INPUT: "AGENTRY_STEP_INPUT",
  AGENT_URL: "AGENTRY_AGENT_URL",
  AGENT_TOKEN_FILE: "AGENTRY_AGENT_TOKEN_FILE",
} as const;

export const AgentPath = {
  healthz: "/healthz",
  readyz: "/readyz",
  info: "/v1/info",
  tasks: "/v1/tasks",
  workspaceExec: "/v1/workspace/exec",
  /** Followed by the file's path in the workspace. */
  workspaceFiles: "/v1/workspace/files/",
} as const;

/** starting: waiting for something (the workspace); error: a setting to fix; stopping: after SIGTERM. */
export const ReadyStatus = z.enum(["ready", "starting", "error", "stopping"]);
export type ReadyStatus = z.output<typeof ReadyStatus>;

/** GET /readyz answer: 200 when ready, else 503 with one line a person can act on. */
export const Readiness = z.object({ status: ReadyStatus, reason: z.string().optional() });
export type Readiness = z.output<typeof Readiness>;

/** POST /v1/tasks body. The agent caps timeoutSeconds (AGENTRY_MAX_TASK_TIMEOUT). */
export const TaskRequest = z.object({
  input: z.string(),
  timeoutSeconds: z.number().positive().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type TaskRequest = z.output<typeof TaskRequest>;

/** POST /v1/tasks answer. */
export const TaskResult = z.object({
  id: z.string(),
  output: z.string(),
  model: z.string(),
  usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }).optional(),
  durationMs: z.number(),
});
export type TaskResult = z.output<typeof TaskResult>;

/** The media type that asks POST /v1/tasks for a stream (send it in Accept). */
export const TASK_STREAM_MEDIA_TYPE = "application/x-ndjson";

/**
 * One line of a streamed task: `started`, then `output` chunks as the model answers (one
 * chunk for a model that does not stream), then `result` (the TaskResult) or `error` (the
 * status and detail the JSON answer would have had).
 */
export const TaskStreamRecord = z.discriminatedUnion("type", [
  z.object({ type: z.literal("started"), id: z.string() }),
  z.object({ type: z.literal("output"), data: z.string() }),
  TaskResult.extend({ type: z.literal("result") }),
  z.object({ type: z.literal("error"), status: z.number().int(), detail: z.string() }),
]);
export type TaskStreamRecord = z.output<typeof TaskStreamRecord>;

/** A task the agent ran lately (it keeps the last ones in memory: gone when it restarts). */
export const TaskSummary = z.object({
  id: z.string(),
  status: z.enum(["running", "succeeded", "failed"]),
  /** RFC 3339. */
  startedAt: z.string(),
  durationMs: z.number().optional(),
  /** The HTTP status the task answered with. */
  code: z.number().int().optional(),
  /** The first characters of the input and output. */
  input: z.string(),
  output: z.string().optional(),
  model: z.string().optional(),
});
export type TaskSummary = z.output<typeof TaskSummary>;

/** GET /v1/tasks answer. */
export const TaskList = z.object({ items: z.array(TaskSummary) });
export type TaskList = z.output<typeof TaskList>;
