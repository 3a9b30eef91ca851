// Model providers of the default agent: one task in, one answer out. `echo` needs no
// network (dry runs and tests); openai, openai-compatible, azure-openai and ollama speak the
// OpenAI chat completions API; anthropic speaks the Messages API. Error answers become
// ProviderError with a message that names the provider and never the API key.
import { setTimeout as delay } from "node:timers/promises";
import { SUPPORTED, type ModelConfig } from "./config.ts";

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface Completion {
  output: string;
  model: string;
  usage?: Usage;
}

export type Complete = (input: string, signal: AbortSignal) => Promise<Completion>;

/** A failed model call: `status` is what the agent answers its caller. */
export class ProviderError extends Error {
  readonly status: number;
  readonly retryAfter: string | undefined;

  constructor(status: number, message: string, retryAfter?: string) {
    super(message);
    this.name = "ProviderError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function providerFor(
  model: ModelConfig,
  options: { echoDelayMs?: number; fetch?: typeof fetch } = {},
): Complete {
  const fetchFn = options.fetch ?? fetch;
  switch (SUPPORTED[model.provider]) {
    case "echo":
      return echo(model, options.echoDelayMs ?? 0);
    case "openai":
      return (input, signal) => openai(model, input, signal, fetchFn);
    case "anthropic":
      return (input, signal) => anthropic(model, input, signal, fetchFn);
    default:
      throw new Error(`provider ${model.provider} is not supported by the default agent yet`);
  }
}

/** The dry-run provider: the output is the input, unchanged. */
function echo(model: ModelConfig, delayMs: number): Complete {
  return async (input, signal) => {
    if (delayMs > 0) await delay(delayMs, undefined, { signal });
    return { output: input, model: model.model };
  };
}

/** Request body of an OpenAI chat completion (exported for the tests). */
export function openaiRequest(model: ModelConfig, input: string): Record<string, unknown> {
  return {
    model: model.model,
    messages: [
      ...(model.systemPrompt ? [{ role: "system", content: model.systemPrompt }] : []),
      { role: "user", content: input },
    ],
    max_tokens: model.maxOutputTokens,
  };
}

async function openai(model: ModelConfig, input: string, signal: AbortSignal, f: typeof fetch) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (model.apiKey) {
    if (model.provider === "azure-openai") headers["api-key"] = model.apiKey;
    else headers.authorization = `Bearer ${model.apiKey}`;
  }
  const body = await call(
    model,
    `${model.endpoint}/chat/completions`,
    headers,
    openaiRequest(model, input),
    signal,
    f,
  );
  return openaiCompletion(model, body);
}

interface OpenAiAnswer {
  model?: string;
  choices?: { message?: { content?: string | null } }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

export function openaiCompletion(model: ModelConfig, body: unknown): Completion {
  const answer = body as OpenAiAnswer;
  const output = answer.choices?.[0]?.message?.content;
  if (typeof output !== "string")
    throw new ProviderError(502, `provider ${model.provider} answered without choices[0].message.content`);
  return {
    output,
    ...completion(model, answer.model, answer.usage?.prompt_tokens, answer.usage?.completion_tokens),
  };
}

export const ANTHROPIC_VERSION = "2023-06-01";

export function anthropicRequest(model: ModelConfig, input: string): Record<string, unknown> {
  return {
    model: model.model,
    max_tokens: model.maxOutputTokens,
    ...(model.systemPrompt ? { system: model.systemPrompt } : {}),
    messages: [{ role: "user", content: input }],
  };
}

async function anthropic(model: ModelConfig, input: string, signal: AbortSignal, f: typeof fetch) {
  const headers = {
    "content-type": "application/json",
    "anthropic-version": ANTHROPIC_VERSION,
    ...(model.apiKey ? { "x-api-key": model.apiKey } : {}),
  };
  const body = await call(
    model,
    `${model.endpoint}/messages`,
    headers,
    anthropicRequest(model, input),
    signal,
    f,
  );
  return anthropicCompletion(model, body);
}

interface AnthropicAnswer {
  model?: string;
  content?: { type?: string; text?: string }[];
  usage?: { input_tokens?: number; output_tokens?: number };
}

export function anthropicCompletion(model: ModelConfig, body: unknown): Completion {
  const answer = body as AnthropicAnswer;
  if (!Array.isArray(answer.content))
    throw new ProviderError(502, `provider ${model.provider} answered without a content array`);
  return {
    output: answer.content
      .filter((c) => c.type === "text")
      .map((c) => c.text ?? "")
      .join(""),
    ...completion(model, answer.model, answer.usage?.input_tokens, answer.usage?.output_tokens),
  };
}

/** The model that answered and the token counts, when the provider reported them. */
function completion(
  model: ModelConfig,
  answered: string | undefined,
  inputTokens: number | undefined,
  outputTokens: number | undefined,
): Omit<Completion, "output"> {
  const usage = inputTokens !== undefined || outputTokens !== undefined;
  return {
    model: answered ?? model.model,
    ...(usage ? { usage: { inputTokens: inputTokens ?? 0, outputTokens: outputTokens ?? 0 } } : {}),
  };
}

/** POSTs JSON and returns the parsed answer, or throws ProviderError saying what went wrong. */
async function call(
  model: ModelConfig,
  url: string,
  headers: Record<string, string>,
  request: unknown,
  signal: AbortSignal,
  f: typeof fetch,
): Promise<unknown> {
  const who = `provider ${model.provider} at ${model.endpoint}`;
  let res: Response;
  let text: string;
  try {
    res = await f(url, { method: "POST", headers, body: JSON.stringify(request), signal });
    text = await res.text();
  } catch (err) {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("aborted");
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    throw new ProviderError(502, `${who} is unreachable${cause}; check spec.model.endpoint and egress rules`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.ok) {
    if (body === undefined)
      throw new ProviderError(502, `${who} answered ${res.status} with a body that is not JSON`);
    return body;
  }
  let detail = errorMessage(body) ?? text.slice(0, 200);
  if (model.apiKey) detail = detail.replaceAll(model.apiKey, "<redacted>");
  if (res.status === 401 || res.status === 403)
    throw new ProviderError(
      502,
      `${who} refused the API key (${res.status}: ${detail}); check the Secret named by spec.model.credentialsSecretRef`,
    );
  if (res.status === 429)
    throw new ProviderError(
      429,
      `${who} is rate limiting (${detail})`,
      res.headers.get("retry-after") ?? undefined,
    );
  throw new ProviderError(502, `${who} answered ${res.status}: ${detail}`);
}

/** OpenAI: {"error":{"message"}}; Anthropic: {"type":"error","error":{"message"}}. */
function errorMessage(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | undefined)?.error;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : undefined;
}
