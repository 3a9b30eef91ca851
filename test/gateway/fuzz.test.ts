// Fuzzes the gateway from its own OpenAPI document with fast-check: every operation with
// generated path parameters, query parameters, headers and bodies (valid examples, mutated
// and arbitrary JSON). Bounded in runs and time, loopback only; no answer may be a 5xx.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { testNamespace } from "../harness/cluster.ts";
import { startGateway } from "./harness.ts";

interface Operation {
  method: string;
  path: string;
  params: { name: string; in: string }[];
  body: boolean;
}

function operations(doc: { paths: Record<string, Record<string, unknown>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const shared = (item.parameters ?? []) as { name: string; in: string }[];
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method] as
        { parameters?: { name: string; in: string }[]; requestBody?: unknown } | undefined;
      if (!op || path.includes("/watch/")) continue;
      ops.push({
        method: method.toUpperCase(),
        path,
        params: [...shared, ...(op.parameters ?? [])],
        body: Boolean(op.requestBody),
      });
    }
  }
  return ops;
}

const segment = fc.oneof(
  fc.constantFrom("a", "one", "x-1", "nope"),
  fc.stringMatching(/^[a-z][-a-z0-9]{0,70}$/),
  fc.string({ maxLength: 20 }),
);

const body = (ns: string) =>
  fc.oneof(
    fc.record({
      metadata: fc.record({
        name: fc.constantFrom("a", "one", "x-1"),
        labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.string({ maxLength: 5 })),
      }),
      spec: fc.oneof(
        fc.constant({ fleetRef: { name: "f" } }),
        fc.constant({ schedule: "@once", steps: [{ name: "s", image: "busybox:1.36" }] }),
        fc.constant({ image: "busybox:1.36" }),
        fc.constant({ template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 2 }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
      ),
      apiVersion: fc.option(fc.constantFrom("agentry.dev/v1alpha1", "v1", ""), { nil: undefined }),
      kind: fc.option(fc.constantFrom("Workspace", "Pipeline", "Bogus"), { nil: undefined }),
    }),
    fc.record({ metadata: fc.record({ namespace: fc.constantFrom(ns, "other") }) }),
    fc.jsonValue({ maxDepth: 3 }),
  );

describe("gateway fuzzing from its OpenAPI document", () => {
  it("answers no request with a 5xx", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const doc = (await gw.call("GET", "/openapi.json", { token: null })).body as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const ops = operations(doc);
    assert.ok(ops.length >= 20, `operations found: ${ops.length}`);
    const deadline = Date.now() + 60_000;
    const failures: string[] = [];
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ops),
        fc.constantFrom(ns, ns, ns, "default", "does-not-exist"),
        segment,
        fc.dictionary(
          fc.constantFrom("limit", "continue", "labelSelector"),
          fc.oneof(fc.string({ maxLength: 10 }), fc.integer().map(String)),
        ),
        fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
        fc.option(body(ns), { nil: undefined }),
        fc.constantFrom("application/json", "application/merge-patch+json", "text/plain"),
        async (op, namespace, name, query, header, payload, contentType) => {
          if (Date.now() > deadline) return;
          let path = op.path
            .replace("{namespace}", encodeURIComponent(namespace))
            .replace("{name}", encodeURIComponent(name));
          const qs = new URLSearchParams(op.params.some((p) => p.in === "query") ? query : {}).toString();
          if (qs) path += `?${qs}`;
          const headers: Record<string, string> = {};
          for (const p of op.params)
            if (p.in === "header" && header !== undefined)
              headers[p.name] = header.replace(/[^\x20-\x7e]/g, "");
          const canHaveBody = op.method === "POST" || op.method === "PUT" || op.method === "PATCH";
          const sent =
            canHaveBody && (op.body || payload !== undefined)
              ? { body: payload ?? {}, headers: { ...headers, "content-type": contentType } }
              : { headers };
          const r = await gw.call(op.method, path, sent);
          statuses.add(r.status);
          if (r.status >= 500) failures.push(`${op.method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
          return r.status < 500;
        },
      ),
      { numRuns: 400, interruptAfterTimeLimit: 70_000 },
    );
    assert.deepEqual(failures, []);
    // The run reached the handlers (not only auth or routing errors).
    assert.ok(
      [...statuses].some((s) => s < 300) && [...statuses].some((s) => s === 422 || s === 404),
      [...statuses].join(","),
    );
  });
});
