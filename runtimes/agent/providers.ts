// Model providers of the default agent: one task in, one answer out. `echo` needs no
// network (dry runs and tests); openai, openai-compatible, azure-openai and ollama speak the
// OpenAI chat completions API; anthropic speaks the Messages API. Error answers become
// ProviderError with a message that names the provider and never the API key. Given
// `onOutput`, a provider streams: the model's answer reaches it piece by piece (Server-Sent
// Events from the provider), and the Completion still carries the whole of it.
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

/** Called with each piece of the answer as the model produces it. */
export type OnOutput = (chunk: string) => void;

export type Complete = (input: string, signal: AbortSignal, onOutput?: OnOutput) => Promise<Completion>;

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
      return (input, signal, onOutput) => openai(model, input, signal, fetchFn, onOutput);
    case "anthropic":
      return (input, signal, onOutput) => anthropic(model, input, signal, fetchFn, onOutput);
    default:
      throw new Error(`provider ${model.provider} is not supported by the default agent yet`);
  }
}

/** The dry-run provider: the output is the input, unchanged. */
function echo(model: ModelConfig, delayMs: number): Complete {
  return async (input, signal, onOutput) => {
    if (delayMs > 0) await delay(delayMs, undefined, { signal });
    // Streamed word by word, as a model would.
    if (onOutput) for (const word of input.split(/(?<=\s)/)) if (word) onOutput(word);
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

async function openai(
  model: ModelConfig,
  input: string,
  signal: AbortSignal,
  f: typeof fetch,
  onOutput?: OnOutput,
): Promise<Completion> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (model.apiKey) {
    if (model.provider === "azure-openai") headers["api-key"] = model.apiKey;
    else headers.authorization = `Bearer ${model.apiKey}`;
  }
  const url = `${model.endpoint}/chat/completions`;
  if (!onOutput)
    return openaiCompletion(model, await call(model, url, headers, openaiRequest(model, input), signal, f));
  const request = { ...openaiRequest(model, input), stream: true, stream_options: { include_usage: true } };
  const res = await post(model, url, headers, request, signal, f);
  let output = "";
  let answered: string | undefined;
  let usage: OpenAiAnswer["usage"];
  for await (const { data } of serverSentEvents(res, model, signal)) {
    if (data === "[DONE]") break;
    const chunk = parseEvent(model, data) as {
      model?: string;
      choices?: { delta?: { content?: string | null } }[];
      usage?: OpenAiAnswer["usage"];
    };
    answered ??= chunk.model;
    if (chunk.usage) usage = chunk.usage;
    const piece = chunk.choices?.[0]?.delta?.content;
    if (piece) {
      output += piece;
      onOutput(piece);
    }
  }
  return { output, ...completion(model, answered, usage?.prompt_tokens, usage?.completion_tokens) };
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

async function anthropic(
  model: ModelConfig,
  input: string,
  signal: AbortSignal,
  f: typeof fetch,
  onOutput?: OnOutput,
): Promise<Completion> {
  const headers = {
    "content-type": "application/json",
    "anthropic-version": ANTHROPIC_VERSION,
    ...(model.apiKey ? { "x-api-key": model.apiKey } : {}),
  };
  const url = `${model.endpoint}/messages`;
  if (!onOutput)
    return anthropicCompletion(
      model,
      await call(model, url, headers, anthropicRequest(model, input), signal, f),
    );
  const res = await post(model, url, headers, { ...anthropicRequest(model, input), stream: true }, signal, f);
  let output = "";
  let answered: string | undefined;
  let inputTokens: number | undefined;
  let outputTokens: number | undefined;
  for await (const { event, data } of serverSentEvents(res, model, signal)) {
    const e = parseEvent(model, data) as {
      message?: { model?: string; usage?: { input_tokens?: number } };
      delta?: { type?: string; text?: string };
      usage?: { output_tokens?: number };
      error?: { message?: string };
    };
    if (event === "error")
      throw new ProviderError(
        502,
        `provider ${model.provider} failed while streaming: ${e.error?.message ?? data.slice(0, 200)}`,
      );
    if (event === "message_start") {
      answered = e.message?.model;
      inputTokens = e.message?.usage?.input_tokens;
    } else if (event === "content_block_delta" && e.delta?.type === "text_delta" && e.delta.text) {
      output += e.delta.text;
      onOutput(e.delta.text);
    } else if (event === "message_delta" && e.usage?.output_tokens !== undefined) {
      outputTokens = e.usage.output_tokens;
    } else if (event === "message_stop") break;
  }
  return { output, ...completion(model, answered, inputTokens, outputTokens) };
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

/** POSTs JSON; the answer when it is a success (its body unread), else a ProviderError saying what went wrong. */
async function post(
  model: ModelConfig,
  url: string,
  headers: Record<string, string>,
  request: unknown,
  signal: AbortSignal,
  f: typeof fetch,
): Promise<Response> {
  let res: Response;
  try {
    res = await f(url, { method: "POST", headers, body: JSON.stringify(request), signal });
  } catch (err) {
    throw unreachable(model, err, signal);
  }
  if (res.ok) return res;
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw unreachable(model, err, signal);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const who = `provider ${model.provider} at ${model.endpoint}`;
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

/** The error of a call that got no (whole) answer: the abort's reason, or a 502 saying so. */
function unreachable(model: ModelConfig, err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new Error("aborted");
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return new ProviderError(
    502,
    `provider ${model.provider} at ${model.endpoint} is unreachable${cause}; check spec.model.endpoint and egress rules`,
  );
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
  const res = await post(model, url, headers, request, signal, f);
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw unreachable(model, err, signal);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ProviderError(
      502,
      `provider ${model.provider} at ${model.endpoint} answered ${res.status} with a body that is not JSON`,
    );
  }
}

/** Largest Server-Sent Event read from a provider. */
const MAX_EVENT_BYTES = 1 << 20;

/** The events of a streamed answer (text/event-stream): the event name and its data. */
async function* serverSentEvents(
  res: Response,
  model: ModelConfig,
  signal: AbortSignal,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, "\n");
      if (buffered.length > MAX_EVENT_BYTES)
        throw new ProviderError(
          502,
          `provider ${model.provider} sent an event larger than ${MAX_EVENT_BYTES} bytes`,
        );
      let end: number;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
    }
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    throw unreachable(model, err, signal);
  }
}

function parseEvent(model: ModelConfig, data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new ProviderError(502, `provider ${model.provider} streamed an event that is not JSON`);
  }
}

/** OpenAI: {"error":{"message"}}; Anthropic: {"type":"error","error":{"message"}}. */
function errorMessage(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | undefined)?.error;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : undefined;
}
