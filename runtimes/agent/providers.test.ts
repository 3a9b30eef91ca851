// Provider request/response mapping against scripted OpenAI-compatible and Anthropic
// servers on loopback.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort } from "../../test/harness/process.ts";
import { startFakeServer, type FakeAnswer, type FakeServer } from "../../test/harness/fakehttp.ts";
import type { ModelConfig } from "./config.ts";
import { ANTHROPIC_VERSION, ProviderError, providerFor } from "./providers.ts";

const KEY = "sk-test-secret-key";
let answer: FakeAnswer = {};
let server: FakeServer;
before(async () => {
  server = await startFakeServer(() => answer);
});
after(() => server.close());

const model = (provider: ModelConfig["provider"], extra: Partial<ModelConfig> = {}): ModelConfig => ({
  provider,
  model: "m-1",
  endpoint: `${server.url}/v1`,
  apiKey: KEY,
  systemPrompt: undefined,
  maxOutputTokens: 128,
  ...extra,
});
const run = (m: ModelConfig, input = "hello") => providerFor(m)(input, AbortSignal.timeout(5000));
const last = () => server.requests.at(-1)!;

async function rejectsWith(promise: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ProviderError, String(err));
    assert.equal(err.status, status);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, new RegExp(KEY));
    return true;
  });
}

describe("echo provider", () => {
  it("answers the input unchanged, without network", async () => {
    const before = server.requests.length;
    const got = await providerFor(model("echo", { model: "echo", endpoint: "" }))(
      "same in, same out",
      AbortSignal.timeout(1000),
    );
    assert.deepEqual(got, { output: "same in, same out", model: "echo" });
    assert.equal(server.requests.length, before);
  });
});

describe("OpenAI-compatible providers", () => {
  const ok: FakeAnswer = {
    body: {
      model: "m-1-2025",
      choices: [{ message: { role: "assistant", content: "hi there" } }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    },
  };

  it("posts a chat completion and maps the answer", async () => {
    answer = ok;
    const got = await run(model("openai", { systemPrompt: "be brief" }));
    assert.deepEqual(got, {
      output: "hi there",
      model: "m-1-2025",
      usage: { inputTokens: 5, outputTokens: 2 },
    });
    const req = last();
    assert.equal(req.method, "POST");
    assert.equal(req.path, "/v1/chat/completions");
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    assert.deepEqual(JSON.parse(req.body), {
      model: "m-1",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello" },
      ],
      max_tokens: 128,
    });
  });

  it("azure-openai sends the key as api-key", async () => {
    answer = ok;
    await run(model("azure-openai"));
    assert.equal(last().headers["api-key"], KEY);
    assert.equal(last().headers.authorization, undefined);
  });

  it("ollama without a key sends no authorization", async () => {
    answer = ok;
    await run(model("ollama", { apiKey: undefined }));
    assert.equal(last().headers.authorization, undefined);
  });

  it("an answer without usage has none", async () => {
    answer = { body: { choices: [{ message: { content: "x" } }] } };
    assert.deepEqual(await run(model("openai-compatible")), { output: "x", model: "m-1" });
  });

  it("a refused key names the Secret and redacts the key", async () => {
    answer = { status: 401, body: { error: { message: `Incorrect API key provided: ${KEY}` } } };
    await rejectsWith(
      run(model("openai")),
      502,
      /refused the API key \(401: Incorrect API key provided: <redacted>\); check the Secret/,
    );
  });

  it("rate limiting is a 429 with retry-after", async () => {
    answer = { status: 429, headers: { "retry-after": "7" }, body: { error: { message: "slow down" } } };
    await assert.rejects(run(model("openai")), (err: unknown) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.status, 429);
      assert.equal(err.retryAfter, "7");
      return true;
    });
  });

  it("a malformed answer is a 502", async () => {
    answer = { body: { choices: [] } };
    await rejectsWith(run(model("openai")), 502, /without choices\[0\].message.content/);
  });

  it("a non-JSON error body is quoted", async () => {
    answer = { status: 500, body: "upstream exploded" };
    await rejectsWith(run(model("openai")), 502, /answered 500: upstream exploded/);
  });

  it("an unreachable endpoint says so", async () => {
    await rejectsWith(
      run(model("openai", { endpoint: `http://127.0.0.1:${await freePort()}/v1` })),
      502,
      /is unreachable.*ECONNREFUSED/,
    );
  });
});

describe("Anthropic provider", () => {
  it("posts a message and maps the answer", async () => {
    answer = {
      body: {
        model: "claude-x",
        content: [
          { type: "text", text: "part one, " },
          { type: "tool_use", id: "t" },
          { type: "text", text: "part two" },
        ],
        usage: { input_tokens: 11, output_tokens: 4 },
      },
    };
    const got = await run(model("anthropic", { systemPrompt: "sys" }));
    assert.deepEqual(got, {
      output: "part one, part two",
      model: "claude-x",
      usage: { inputTokens: 11, outputTokens: 4 },
    });
    const req = last();
    assert.equal(req.path, "/v1/messages");
    assert.equal(req.headers["x-api-key"], KEY);
    assert.equal(req.headers["anthropic-version"], ANTHROPIC_VERSION);
    assert.deepEqual(JSON.parse(req.body), {
      model: "m-1",
      max_tokens: 128,
      system: "sys",
      messages: [{ role: "user", content: "hello" }],
    });
  });

  it("maps Anthropic error bodies", async () => {
    answer = {
      status: 400,
      body: { type: "error", error: { type: "invalid_request_error", message: "max_tokens too large" } },
    };
    await rejectsWith(run(model("anthropic")), 502, /answered 400: max_tokens too large/);
  });

  it("a timeout aborts the call", async () => {
    answer = { body: { content: [] } };
    const slow = await startFakeServer(() => new Promise<FakeAnswer>(() => undefined));
    try {
      await assert.rejects(
        providerFor(model("anthropic", { endpoint: slow.url }))("x", AbortSignal.timeout(100)),
        (err: unknown) => err instanceof Error && err.name === "TimeoutError",
      );
    } finally {
      await slow.close();
    }
  });
});

describe("streaming providers", () => {
  const sse = (events: [string | undefined, unknown][]): FakeAnswer => ({
    headers: { "content-type": "text/event-stream" },
    body: events
      .map(
        ([event, data]) =>
          `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`,
      )
      .join(""),
  });
  const stream = async (m: ModelConfig) => {
    const pieces: string[] = [];
    const got = await providerFor(m)("hello", AbortSignal.timeout(5000), (c) => pieces.push(c));
    return { got, pieces, request: JSON.parse(last().body) as Record<string, unknown> };
  };

  it("OpenAI: asks for a stream and hands on each delta; usage from the last chunk", async () => {
    answer = sse([
      [undefined, { model: "m-1-2025", choices: [{ delta: { role: "assistant", content: "" } }] }],
      [undefined, { model: "m-1-2025", choices: [{ delta: { content: "hi " } }] }],
      [undefined, { model: "m-1-2025", choices: [{ delta: { content: "there" } }] }],
      [undefined, { model: "m-1-2025", choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }],
      [undefined, "[DONE]"],
    ]);
    const { got, pieces, request } = await stream(model("openai"));
    assert.deepEqual(pieces, ["hi ", "there"]);
    assert.deepEqual(got, {
      output: "hi there",
      model: "m-1-2025",
      usage: { inputTokens: 5, outputTokens: 2 },
    });
    assert.equal(request.stream, true);
    assert.deepEqual(request.stream_options, { include_usage: true });
  });

  it("Anthropic: text deltas in order, model and usage from message_start and message_delta", async () => {
    answer = sse([
      [
        "message_start",
        { type: "message_start", message: { model: "claude-x", usage: { input_tokens: 11 } } },
      ],
      ["content_block_start", { type: "content_block_start", index: 0 }],
      [
        "content_block_delta",
        { type: "content_block_delta", delta: { type: "text_delta", text: "part one, " } },
      ],
      ["ping", { type: "ping" }],
      [
        "content_block_delta",
        { type: "content_block_delta", delta: { type: "text_delta", text: "part two" } },
      ],
      ["message_delta", { type: "message_delta", usage: { output_tokens: 4 } }],
      ["message_stop", { type: "message_stop" }],
    ]);
    const { got, pieces, request } = await stream(model("anthropic"));
    assert.deepEqual(pieces, ["part one, ", "part two"]);
    assert.deepEqual(got, {
      output: "part one, part two",
      model: "claude-x",
      usage: { inputTokens: 11, outputTokens: 4 },
    });
    assert.equal(request.stream, true);
  });

  it("an error event or a refused key while streaming is a ProviderError", async () => {
    answer = sse([["error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }]]);
    await rejectsWith(stream(model("anthropic")), 502, /failed while streaming: Overloaded/);
    answer = { status: 401, body: { error: { message: `bad key ${KEY}` } } };
    await rejectsWith(stream(model("openai")), 502, /refused the API key/);
  });
});
