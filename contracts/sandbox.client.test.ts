import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SandboxApiError, SandboxClient } from "./sandbox.client.ts";

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
  redirect?: string | undefined;
}

/** A client whose fetch records the request and answers `response`. */
function stub(response: () => Response, token?: string | (() => Promise<string>)) {
  const calls: Call[] = [];
  const fetchStub = (input: string, init?: RequestInit) => {
    calls.push({
      url: input,
      method: init?.method ?? "GET",
      headers: init?.headers as Record<string, string>,
      body: init?.body,
      redirect: init?.redirect,
    });
    return Promise.resolve(response());
  };
  const client = new SandboxClient({
    baseUrl: "http://sandbox:8080/",
    token,
    fetch: fetchStub as typeof fetch,
  });
  return { client, calls };
}

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": type } });

describe("SandboxClient", () => {
  it("sends the bearer token and encodes ids and path segments", async () => {
    const { client, calls } = stub(() => new Response(null, { status: 201 }), "t0k");
    assert.deepEqual(await client.writeFile("ns.a", "dir/a b#?.txt", "x"), { created: true });
    assert.equal(calls[0]!.url, "http://sandbox:8080/workspaces/ns.a/files/dir/a%20b%23%3F.txt");
    assert.equal(calls[0]!.method, "PUT");
    assert.equal(calls[0]!.headers.authorization, "Bearer t0k");
  });

  it("turns problem answers into SandboxApiError with the problem", async () => {
    const problem = { type: "about:blank", title: "Conflict", status: 409, detail: "maximum of 3" };
    const { client } = stub(() => json(409, problem, "application/problem+json"));
    await assert.rejects(client.createWorkspace("x"), (err: unknown) => {
      assert.ok(err instanceof SandboxApiError);
      assert.equal(err.status, 409);
      assert.deepEqual(err.problem, problem);
      assert.match(err.message, /409 maximum of 3/);
      return true;
    });
  });

  it("takes a timeout in fractions of a second (its own deadline in whole milliseconds)", async () => {
    const result = {
      exitCode: 0,
      signal: null,
      stdout: "",
      stderr: "",
      timedOut: false,
      truncated: false,
      durationMs: 1,
    };
    const { client, calls } = stub(() => json(200, result));
    assert.deepEqual(
      await client.exec("w", { command: ["true"], timeoutSeconds: 489.7657858477749 }),
      result,
    );
    assert.equal(JSON.parse(String(calls[0]!.body)).timeoutSeconds, 489.7657858477749);
    const records = [];
    const stream = stub(
      () => new Response(`${JSON.stringify({ ...result, type: "exit" })}\n`, { status: 200 }),
    );
    for await (const r of stream.client.execStream("w", { command: ["true"], timeoutSeconds: 0.0001 }))
      records.push(r);
    assert.equal(records.length, 1);
  });

  it("reports transport failures as status 0", async () => {
    const client = new SandboxClient({
      baseUrl: "http://sandbox:8080",
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    await assert.rejects(
      client.status(),
      (err: unknown) => err instanceof SandboxApiError && err.status === 0,
    );
  });

  it("refuses paths fetch would normalise before the server could refuse them", async () => {
    const { client, calls } = stub(() => new Response(null, { status: 204 }));
    for (const path of ["../x", "a/../../b", "/etc/passwd", "a//b", "./a", "a/.", ""])
      await assert.rejects(
        client.deleteFile("w", path),
        (err: unknown) => err instanceof SandboxApiError && err.status === 400,
      );
    assert.equal(calls.length, 0);
  });

  it("maps 404 to undefined for getWorkspace and reads created from the status", async () => {
    const notFound = stub(() => json(404, { status: 404 }));
    assert.equal(await notFound.client.getWorkspace("x"), undefined);
    const existing = stub(() => json(200, { id: "x", ownerId: null, createdAt: "t" }));
    assert.equal((await existing.client.createWorkspace("x", { ownerId: "o" })).created, false);
    assert.equal(existing.calls[0]!.body, '{"ownerId":"o"}');
  });

  it("asks for a token at every call and sends none to the probes", async () => {
    let n = 0;
    const { client, calls } = stub(
      () => json(200, { draining: false }),
      () => Promise.resolve(`fresh-${++n}`),
    );
    await client.drain();
    await client.undrain();
    await client.ready();
    assert.deepEqual(
      calls.map((c) => c.headers.authorization),
      ["Bearer fresh-1", "Bearer fresh-2", undefined],
    );
  });

  it("never follows a redirect: a 3xx is an error and fetch is told not to follow", async () => {
    const { client, calls } = stub(
      () => new Response(null, { status: 307, headers: { location: "http://elsewhere/" } }),
      "t0k",
    );
    await assert.rejects(client.status(), (err: unknown) => {
      assert.ok(err instanceof SandboxApiError);
      assert.equal(err.status, 307);
      assert.match(err.message, /redirect .*never followed/);
      return true;
    });
    assert.equal(calls[0]!.redirect, "manual");
  });

  it("reads at most maxResponseBytes of an answer", async () => {
    const big = "x".repeat(5000);
    const client = (chunked: boolean) =>
      new SandboxClient({
        baseUrl: "http://sandbox:8080",
        maxResponseBytes: 1000,
        fetch: () =>
          Promise.resolve(
            new Response(
              chunked
                ? new ReadableStream({
                    start(c) {
                      for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(big));
                      c.close();
                    },
                  })
                : JSON.stringify({ items: [big] }),
              { status: 200 },
            ),
          ),
      });
    for (const chunked of [false, true])
      await assert.rejects(client(chunked).listWorkspaces(), /larger than 1000 bytes/);
  });
});
