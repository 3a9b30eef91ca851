import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadAgentConfig, workspaceSettings, type AgentConfig } from "./config.ts";

const load = (env: Record<string, string>, argv: string[] = []) => loadAgentConfig(argv, env) as AgentConfig;

describe("agent config: model settings", () => {
  const cases: { name: string; env: Record<string, string>; problem?: RegExp; endpoint?: string }[] = [
    { name: "echo needs nothing else", env: { AGENTRY_MODEL_PROVIDER: "echo" }, endpoint: "" },
    {
      name: "openai defaults its endpoint",
      env: { AGENTRY_MODEL_PROVIDER: "openai", AGENTRY_MODEL: "gpt-x", AGENTRY_MODEL_API_KEY: "k" },
      endpoint: "https://api.openai.com/v1",
    },
    {
      name: "anthropic defaults its endpoint",
      env: { AGENTRY_MODEL_PROVIDER: "anthropic", AGENTRY_MODEL: "claude", AGENTRY_MODEL_API_KEY: "k" },
      endpoint: "https://api.anthropic.com/v1",
    },
    {
      name: "ollama needs no key; trailing slash dropped",
      env: {
        AGENTRY_MODEL_PROVIDER: "ollama",
        AGENTRY_MODEL: "llama",
        AGENTRY_MODEL_ENDPOINT: "http://o:11434/v1/",
      },
      endpoint: "http://o:11434/v1",
    },
    {
      name: "no provider",
      env: {},
      problem: /no model provider configured: set spec.model .*echo/,
    },
    {
      name: "openai without key names the Secret reference",
      env: { AGENTRY_MODEL_PROVIDER: "openai", AGENTRY_MODEL: "gpt-x" },
      problem: /provider openai needs an API key: set spec.model.credentialsSecretRef/,
    },
    {
      name: "azure-openai without key",
      env: {
        AGENTRY_MODEL_PROVIDER: "azure-openai",
        AGENTRY_MODEL: "m",
        AGENTRY_MODEL_ENDPOINT: "https://a/openai/v1",
      },
      problem: /azure-openai needs an API key/,
    },
    {
      name: "openai-compatible needs an endpoint",
      env: { AGENTRY_MODEL_PROVIDER: "openai-compatible", AGENTRY_MODEL: "m" },
      problem: /needs an endpoint: set spec.model.endpoint/,
    },
    {
      name: "a model name is needed",
      env: { AGENTRY_MODEL_PROVIDER: "anthropic", AGENTRY_MODEL_API_KEY: "k" },
      problem: /needs a model name: set spec.model.model/,
    },
    {
      name: "google is not supported yet",
      env: { AGENTRY_MODEL_PROVIDER: "google", AGENTRY_MODEL: "g" },
      problem: /provider google is not supported by the default agent yet/,
    },
    {
      name: "bedrock is not supported yet",
      env: { AGENTRY_MODEL_PROVIDER: "bedrock", AGENTRY_MODEL: "b" },
      problem: /provider bedrock is not supported/,
    },
    {
      name: "unknown provider",
      env: { AGENTRY_MODEL_PROVIDER: "skynet" },
      problem: /"skynet" is not a known provider; use one of openai, anthropic/,
    },
    {
      name: "bad endpoint",
      env: { AGENTRY_MODEL_PROVIDER: "ollama", AGENTRY_MODEL: "m", AGENTRY_MODEL_ENDPOINT: "ftp://x" },
      problem: /AGENTRY_MODEL_ENDPOINT must be an http\(s\) URL/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const cfg = load(c.env);
      if (c.problem) {
        assert.match(cfg.modelProblem ?? "", c.problem);
        assert.equal(cfg.model, undefined);
      } else {
        assert.equal(cfg.modelProblem, undefined);
        assert.equal(cfg.model?.endpoint, c.endpoint);
      }
    });

  it("never puts the API key into a problem", () => {
    const cfg = load({ AGENTRY_MODEL_PROVIDER: "openai-compatible", AGENTRY_MODEL_API_KEY: "sk-secret" });
    assert.ok(cfg.modelProblem);
    assert.doesNotMatch(cfg.modelProblem, /sk-secret/);
  });
});

describe("agent config: process settings", () => {
  it("reads the operator's env and defaults the rest", () => {
    const cfg = load({ AGENTRY_AGENT_NAME: "a1", AGENTRY_NAMESPACE: "ns", AGENTRY_PORT: "9000" });
    assert.equal(cfg.name, "a1");
    assert.equal(cfg.namespace, "ns");
    assert.equal(cfg.port, 9000);
    assert.equal(cfg.host, "0.0.0.0");
    assert.equal(cfg.maxConcurrentTasks, 4);
    assert.equal(cfg.strict, false);
  });

  it("flags win over env", () => {
    const cfg = load({ AGENTRY_PORT: "9000" }, [
      "--port=0",
      "--host=127.0.0.1",
      "--strict",
      "--max-concurrent-tasks=2",
    ]);
    assert.equal(cfg.port, 0);
    assert.equal(cfg.host, "127.0.0.1");
    assert.equal(cfg.strict, true);
    assert.equal(cfg.maxConcurrentTasks, 2);
  });

  const bad: [string, Record<string, string>, string[], RegExp][] = [
    ["port out of range", { AGENTRY_PORT: "70000" }, [], /AGENTRY_PORT\) must be an integer from 0 to 65535/],
    ["port not a number", { AGENTRY_PORT: "http" }, [], /got "http"/],
    ["zero concurrency", {}, ["--max-concurrent-tasks=0"], /--max-concurrent-tasks/],
    ["strict not boolean", { AGENTRY_STRICT: "maybe" }, [], /AGENTRY_STRICT\) must be true or false/],
    ["unknown flag", {}, ["--nope"], /unknown option '--nope'/],
    ["a fractional task timeout", { AGENTRY_TASK_TIMEOUT: "1.5s" }, [], /--task-timeout .* whole seconds/],
  ];
  for (const [name, env, argv, message] of bad)
    it(`refuses ${name}`, () => assert.throws(() => loadAgentConfig(argv, env), message));

  it("--help", () => assert.equal(loadAgentConfig(["--help"], {}), "help"));

  it("takes Go-style durations, and the old variables in their old units with a warning", () => {
    const cfg = load({ AGENTRY_TASK_TIMEOUT: "2m", AGENTRY_ECHO_DELAY: "1.5s" }, ["--shutdown-grace=0s"]);
    assert.deepEqual(
      [cfg.defaultTaskTimeoutSeconds, cfg.echoDelayMs, cfg.shutdownGraceSeconds, cfg.maxTaskTimeoutSeconds],
      [120, 1500, 0, 3600],
    );
    const warnings: string[] = [];
    const old = loadAgentConfig(
      ["--shutdown-grace-seconds=5"],
      {
        AGENTRY_TASK_TIMEOUT_SECONDS: "30",
        AGENTRY_ECHO_DELAY_MS: "250",
        AGENTRY_MAX_TASK_TIMEOUT_SECONDS: "60",
      },
      (w) => warnings.push(w),
    ) as AgentConfig;
    assert.deepEqual(
      [old.defaultTaskTimeoutSeconds, old.echoDelayMs, old.shutdownGraceSeconds, old.maxTaskTimeoutSeconds],
      [30, 250, 5, 60],
    );
    assert.equal(warnings.length, 4);
    assert.match(warnings.join("\n"), /AGENTRY_ECHO_DELAY_MS is deprecated; use AGENTRY_ECHO_DELAY=250ms/);
  });
});

describe("agent config: workspace URL", () => {
  const cases: [string, { baseUrl: string; id: string } | RegExp][] = [
    ["http://10.0.0.7:8080/workspaces/ns.ws", { baseUrl: "http://10.0.0.7:8080", id: "ns.ws" }],
    ["http://10.0.0.7:8080/workspaces/ns.ws/", { baseUrl: "http://10.0.0.7:8080", id: "ns.ws" }],
    ["http://sb.svc:80/prefix/workspaces/w", { baseUrl: "http://sb.svc:80/prefix", id: "w" }],
    ["http://10.0.0.7:8080/ns.ws", /must look like http:\/\/<host>:<port>\/workspaces\/<id>/],
    ["10.0.0.7:8080/workspaces/w", /must look like/],
  ];
  for (const [url, want] of cases)
    it(url, () => {
      const got = workspaceSettings("ws", url);
      if (want instanceof RegExp) assert.match(got.problem ?? "", want);
      else assert.deepEqual(got.workspace, { name: "ws", tokenFile: undefined, ...want });
    });

  it("no URL: no workspace and no problem", () =>
    assert.deepEqual(workspaceSettings("", ""), { workspace: undefined, problem: undefined }));
});
