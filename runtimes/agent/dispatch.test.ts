// Dispatch decisions with a scripted fetch: which answers are retried, which end the step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dispatch, DispatchError, dispatchOptions } from "./dispatch.ts";

type Step = Response | Error;
const refused = () =>
  Object.assign(new TypeError("fetch failed"), {
    cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }),
  });
const problem = (status: number, detail: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: "about:blank", title: "x", status, detail }), { status, headers });
const ok = (output: string) => new Response(JSON.stringify({ id: "1", output, model: "m", durationMs: 1 }));

function scripted(steps: Step[]) {
  const bodies: unknown[] = [];
  const f = ((_url: string, init: RequestInit) => {
    bodies.push(JSON.parse(init.body as string));
    const next = steps.shift();
    if (!next) return Promise.reject(new Error("no more answers scripted"));
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(next);
  }) as unknown as typeof fetch;
  return { f, bodies };
}

describe("dispatch", () => {
  const transient: [string, Step][] = [
    ["connection refused", refused()],
    ["503 not ready", problem(503, "not ready")],
    ["429 busy", problem(429, "busy")],
    ["502 from a proxy", new Response("bad gateway", { status: 502 })],
  ];
  for (const [name, first] of transient)
    it(`retries ${name}, then succeeds`, async () => {
      const { f, bodies } = scripted([first, ok("done")]);
      const result = await dispatch("http://agent", "a", "in", 10, {
        fetch: f,
        now: () => 0,
        minBackoffMs: 1,
      });
      assert.equal(result.output, "done");
      assert.equal(bodies.length, 2);
      assert.deepEqual(bodies[0], { input: "in", timeoutSeconds: 10 });
    });

  const final: [string, Step, RegExp][] = [
    ["a 400", problem(400, "input: expected string"), /^agent a answered 400: input: expected string$/],
    [
      "a 504 model timeout",
      problem(504, "the model did not answer"),
      /answered 504: the model did not answer/,
    ],
    ["a 500 without JSON", new Response("boom", { status: 500 }), /answered 500: boom/],
    ["an unknown transport error", new TypeError("fetch failed"), /is unreachable \(fetch failed\)/],
  ];
  for (const [name, answer, message] of final)
    it(`fails at once on ${name}`, async () => {
      const { f, bodies } = scripted([answer, ok("never")]);
      await assert.rejects(
        dispatch("http://agent", "a", "in", 10, { fetch: f, minBackoffMs: 1 }),
        (err: unknown) => {
          assert.ok(err instanceof DispatchError);
          assert.equal(err.code, 1);
          assert.match(err.message, message);
          return true;
        },
      );
      assert.equal(bodies.length, 1);
    });

  it("gives up when the step's time is over, with the last reason", async () => {
    let t = 0;
    const { f } = scripted(Array.from({ length: 50 }, () => problem(503, "still starting")));
    const slowFetch = (async (url: string, init: RequestInit) => {
      t += 4000; // each attempt costs 4 s of the step's 10
      return f(url, init);
    }) as unknown as typeof fetch;
    await assert.rejects(
      dispatch("http://agent", "a", "in", 10, { fetch: slowFetch, now: () => t, minBackoffMs: 1 }),
      /^DispatchError: step timed out after 10 s: agent a answered 503: still starting$/,
    );
  });

  it("an empty agent URL names the missing AgentRuntime", async () => {
    await assert.rejects(dispatch("", "reviewer", "in", 10), /the AgentRuntime reviewer did not exist/);
  });
});

describe("dispatch: tokens and redirects", () => {
  it("sends the token read before each attempt, and retries a refused (401) token", async () => {
    const headers: (string | null)[] = [];
    let n = 0;
    const answers = [problem(401, "token expired"), ok("done")];
    const f = ((_url: string, init: RequestInit) => {
      headers.push(new Headers(init.headers).get("authorization"));
      assert.equal(init.redirect, "manual");
      return Promise.resolve(answers.shift()!);
    }) as unknown as typeof fetch;
    const result = await dispatch("http://agent", "a", "in", 10, {
      fetch: f,
      now: () => 0,
      minBackoffMs: 1,
      token: () => `token-${++n}`,
    });
    assert.equal(result.output, "done");
    assert.deepEqual(headers, ["Bearer token-1", "Bearer token-2"]);
  });

  it("never follows a redirect: the step fails at once", async () => {
    const { f, bodies } = scripted([
      new Response(null, { status: 302, headers: { location: "http://elsewhere/" } }),
      ok("never"),
    ]);
    await assert.rejects(
      dispatch("http://agent", "a", "in", 10, { fetch: f, now: () => 0, minBackoffMs: 1, token: () => "t" }),
      (err: unknown) =>
        err instanceof DispatchError &&
        /answered a redirect \(302\), which is never followed/.test(err.message),
    );
    assert.equal(bodies.length, 1);
  });
});

describe("dispatch options", () => {
  it("flags win over env; input comes from AGENTRY_STEP_INPUT", () => {
    const env = {
      AGENTRY_MANIFEST: "/m.json",
      AGENTRY_STEP: "a",
      AGENTRY_AGENT_URL: "http://x",
      AGENTRY_AGENT_TOKEN_FILE: "/t/reviewer",
      AGENTRY_STEP_INPUT: "i",
    };
    assert.deepEqual(dispatchOptions(["--step", "b"], env), {
      manifest: "/m.json",
      step: "b",
      agentUrl: "http://x",
      tokenFile: "/t/reviewer",
      input: "i",
    });
  });
  it("requires a manifest and a step", () => {
    assert.throws(() => dispatchOptions([], {}), /--manifest \(AGENTRY_MANIFEST\) is required/);
    assert.throws(() => dispatchOptions(["--manifest", "m"], {}), /--step \(AGENTRY_STEP\) is required/);
    assert.throws(() => dispatchOptions(["--bogus"], {}), /unknown option '--bogus'/);
  });
});
