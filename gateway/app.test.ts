import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { routeOf } from "./routes/route.ts";
import { KINDS } from "../api/v1alpha1/index.ts";
import { EXAMPLES, openApiDocument } from "./openapi.ts";

describe("routeOf", () => {
  const cases: [string, string][] = [
    ["/readyz", "/readyz"],
    ["/metrics", "other"],
    ["/v1/namespaces/ns/pipelines", "/v1/namespaces/{namespace}/pipelines"],
    ["/v1/namespaces/ns/pipelines/p", "/v1/namespaces/{namespace}/pipelines/{name}"],
    ["/v1/namespaces/ns/pipelines/p/runs", "/v1/namespaces/{namespace}/pipelines/{name}/runs"],
    ["/v1/namespaces/ns/workspaces/w/status", "/v1/namespaces/{namespace}/workspaces/{name}/status"],
    ["/v1/watch/namespaces/ns/workspaces", "/v1/watch/namespaces/{namespace}/workspaces"],
    ["/v1/namespaces/ns/workspaces/w/files", "/v1/namespaces/{namespace}/workspaces/{name}/files"],
    [
      "/v1/namespaces/ns/workspaces/w/files/content",
      "/v1/namespaces/{namespace}/workspaces/{name}/files/content",
    ],
    [
      "/v1/namespaces/ns/workspaces/w/files/archive",
      "/v1/namespaces/{namespace}/workspaces/{name}/files/archive",
    ],
    ["/v1/namespaces/ns/workspaces/w/exec", "/v1/namespaces/{namespace}/workspaces/{name}/exec"],
    [
      "/v1/namespaces/ns/workspaces/w/exec/1234",
      "/v1/namespaces/{namespace}/workspaces/{name}/exec/{execId}",
    ],
    ["/v1/namespaces/ns/agentruntimes/a/tasks", "/v1/namespaces/{namespace}/agentruntimes/{name}/tasks"],
    [
      "/v1/namespaces/ns/pipelines/p/runs/r-1/logs",
      "/v1/namespaces/{namespace}/pipelines/{name}/runs/{run}/logs",
    ],
    ["/v1/namespaces/ns/permissions", "/v1/namespaces/{namespace}/permissions"],
    ["/v1/namespaces/ns/events", "/v1/namespaces/{namespace}/events"],
    [
      "/v1/namespaces/ns/sandboxfleets/f/sandboxes",
      "/v1/namespaces/{namespace}/sandboxfleets/{name}/sandboxes",
    ],
    ["/v1/namespaces/ns/secrets", "other"],
    ["/v1/workspaces", "/v1/workspaces"],
    ["/v1/secrets", "other"],
    ["/v1/namespaces/ns/pipelines/p/x/y", "other"],
    ["/anything", "other"],
  ];
  for (const [path, want] of cases) it(path, () => assert.equal(routeOf(path), want));
});

describe("openApiDocument", () => {
  it("is OpenAPI 3.1 with a schema per kind and only resolvable references", () => {
    const doc = openApiDocument();
    assert.equal(doc.openapi, "3.1.0");
    const text = JSON.stringify(doc);
    const components = doc.components as {
      schemas: Record<string, unknown>;
      responses: Record<string, unknown>;
    };
    for (const m of text.matchAll(/"\$ref":"#\/components\/(schemas|responses)\/([^"]+)"/g))
      assert.ok(components[m[1] as "schemas" | "responses"][m[2]!], `dangling ${m[0]}`);
    for (const kind of ["AgentRuntime", "Pipeline", "SandboxFleet", "Workspace"])
      assert.ok(components.schemas[kind]);
  });

  const dataPlane: [string, string][] = [
    ["get", "/v1/namespaces/{namespace}/workspaces/{name}/files"],
    ["get", "/v1/namespaces/{namespace}/workspaces/{name}/files/content"],
    ["put", "/v1/namespaces/{namespace}/workspaces/{name}/files/content"],
    ["delete", "/v1/namespaces/{namespace}/workspaces/{name}/files/content"],
    ["get", "/v1/namespaces/{namespace}/workspaces/{name}/files/archive"],
    ["post", "/v1/namespaces/{namespace}/workspaces/{name}/exec"],
    ["delete", "/v1/namespaces/{namespace}/workspaces/{name}/exec/{execId}"],
    ["post", "/v1/namespaces/{namespace}/agentruntimes/{name}/tasks"],
    ["get", "/v1/namespaces/{namespace}/agentruntimes/{name}/tasks"],
    ["get", "/v1/namespaces/{namespace}/pipelines/{name}/runs"],
    ["post", "/v1/namespaces/{namespace}/pipelines/{name}/runs"],
    ["get", "/v1/namespaces/{namespace}/pipelines/{name}/runs/{run}/logs"],
  ];
  it("documents every data-plane route, with a 403 for RBAC", () => {
    const paths = openApiDocument().paths as Record<
      string,
      Record<string, { responses?: Record<string, unknown> }>
    >;
    for (const [method, path] of dataPlane) {
      const op = paths[path]?.[method];
      assert.ok(op, `${method} ${path} is not documented`);
      assert.ok(op.responses?.["403"], `${method} ${path} documents no 403`);
    }
  });
});

describe("the document's examples", () => {
  for (const def of KINDS)
    it(`${def.kind} is valid by its schema`, () => {
      const r = def.object.safeParse({ apiVersion: def.apiVersion, kind: def.kind, ...EXAMPLES[def.kind] });
      assert.ok(r.success, JSON.stringify(r.error?.issues));
    });
});
