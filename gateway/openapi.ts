// The OpenAPI 3.1 document of the gateway, generated from the same zod schemas as the CRDs
// (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Built once at start.
import { z } from "zod";
import { KINDS, type KindDefinition } from "../api/v1alpha1/index.ts";
import { dataPlanePaths, dataPlaneSchemas } from "./openapi.dataplane.ts";

type Json = Record<string, unknown>;

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});
const errors = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/Problem${c}` }]));
const PROBLEM_CODES = [400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422, 429, 502, 503];

const param = (
  name: string,
  where: "path" | "query" | "header",
  schema: Json,
  description: string,
  required = where === "path",
) => ({
  name,
  in: where,
  required,
  description,
  schema,
});

const nsParam = param(
  "namespace",
  "path",
  { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
  "Namespace.",
);
const nameParam = (def: KindDefinition) =>
  param(
    "name",
    "path",
    { type: "string", pattern: "^[a-z]([-a-z0-9]*[a-z0-9])?$", maxLength: def.maxNameLength },
    `${def.kind} name.`,
  );
const idemParam = param(
  "Idempotency-Key",
  "header",
  { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" },
  "A retried POST with the same key (and body) returns the first answer instead of writing again.",
);
const ifMatch = param(
  "If-Match",
  "header",
  { type: "string" },
  "ETag (resourceVersion) the object must still have.",
);

function schemaOf(def: KindDefinition): Json {
  const s = z.toJSONSchema(def.object, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
  }) as Json;
  delete s.$schema;
  const props = s.properties as Json | undefined;
  if (props?.status) props.status = { ...(props.status as Json), readOnly: true };
  return { ...s, description: def.description };
}

function kindPaths(def: KindDefinition): Json {
  const ref = { $ref: `#/components/schemas/${def.kind}` };
  const listRef = { $ref: `#/components/schemas/${def.kind}List` };
  const body = (type = "application/json") => ({ required: true, content: { [type]: { schema: ref } } });
  const one = (code: number, description: string) => ({
    [String(code)]: {
      description,
      headers: { ETag: { schema: { type: "string" } } },
      content: { "application/json": { schema: ref } },
    },
  });
  const base = `/v1/namespaces/{namespace}/${def.plural}`;
  const tags = [def.kind];
  const paths: Json = {
    [base]: {
      parameters: [nsParam],
      get: {
        operationId: `list${def.kind}`,
        tags,
        summary: `List ${def.plural}`,
        parameters: [
          param("limit", "query", { type: "integer", minimum: 1, maximum: 500 }, "Page size."),
          param("continue", "query", { type: "string" }, "Continue token from the previous page."),
          param("labelSelector", "query", { type: "string" }, "Kubernetes label selector."),
        ],
        responses: {
          "200": { description: "A page of objects.", content: { "application/json": { schema: listRef } } },
          ...errors(400, 401, 403, 410, 429, 502),
        },
      },
      post: {
        operationId: `create${def.kind}`,
        tags,
        summary: `Create a ${def.kind}`,
        parameters: [idemParam],
        requestBody: body(),
        responses: { ...one(201, "Created."), ...errors(400, 401, 403, 409, 413, 415, 422, 429, 502, 503) },
      },
    },
    [`${base}/{name}`]: {
      parameters: [nsParam, nameParam(def)],
      get: {
        operationId: `read${def.kind}`,
        tags,
        parameters: [
          param("If-None-Match", "header", { type: "string" }, "Answer 304 when the ETag still matches."),
        ],
        responses: {
          ...one(200, "The object."),
          "304": { description: "Not modified." },
          ...errors(401, 403, 404, 429, 502),
        },
      },
      put: {
        operationId: `replace${def.kind}`,
        tags,
        parameters: [ifMatch],
        requestBody: body(),
        responses: {
          ...one(200, "Replaced."),
          ...errors(400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 502, 503),
        },
      },
      patch: {
        operationId: `patch${def.kind}`,
        tags,
        summary: "JSON merge patch (RFC 7386); status is ignored",
        parameters: [ifMatch],
        requestBody: {
          required: true,
          content: { "application/merge-patch+json": { schema: { type: "object" } } },
        },
        responses: {
          ...one(200, "Patched."),
          ...errors(400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 502, 503),
        },
      },
      delete: {
        operationId: `delete${def.kind}`,
        tags,
        parameters: [ifMatch],
        responses: {
          "200": { description: "Deletion accepted." },
          ...errors(401, 403, 404, 409, 412, 429, 502, 503),
        },
      },
    },
    [`/v1/watch/namespaces/{namespace}/${def.plural}`]: {
      parameters: [nsParam],
      get: {
        operationId: `watch${def.kind}`,
        tags,
        summary: `Live ${def.kind} events (Server-Sent Events: ADDED, MODIFIED, DELETED), resumable with Last-Event-ID`,
        parameters: [param("Last-Event-ID", "header", { type: "string" }, "Resume after this event id.")],
        responses: {
          "200": {
            description: "An event stream.",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          ...errors(401, 403, 429),
        },
      },
    },
  };
  if (def.kind === "Pipeline") {
    paths[`${base}/{name}/runs`] = {
      parameters: [nsParam, nameParam(def)],
      post: {
        operationId: "runPipeline",
        tags,
        summary: "Trigger a run of the pipeline now",
        parameters: [idemParam],
        responses: {
          "202": {
            description: "Run requested.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/RunAccepted" } } },
          },
          ...errors(401, 403, 404, 409, 422, 429, 502, 503),
        },
      },
    };
  }
  return paths;
}

export function openApiDocument(version = "0.1.0"): Json {
  const schemas: Json = {
    Problem: {
      type: "object",
      description: "RFC 9457 problem details.",
      required: ["type", "title", "status"],
      properties: {
        type: { type: "string" },
        title: { type: "string" },
        status: { type: "integer" },
        detail: { type: "string" },
        instance: { type: "string" },
        requestId: { type: "string" },
        errors: {
          type: "array",
          items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
        },
      },
    },
    RunAccepted: {
      type: "object",
      required: ["requestId"],
      properties: {
        requestId: { type: "string" },
        pipeline: { type: "object" },
        message: { type: "string" },
      },
    },
  };
  let paths: Json = {};
  for (const def of KINDS) {
    schemas[def.kind] = schemaOf(def);
    schemas[`${def.kind}List`] = {
      type: "object",
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: {
          type: "object",
          properties: { continue: { type: "string" }, resourceVersion: { type: "string" } },
        },
        items: { type: "array", items: { $ref: `#/components/schemas/${def.kind}` } },
      },
    };
    paths = { ...paths, ...kindPaths(def) };
  }
  // The data plane (openapi.dataplane.ts): its paths merged into the kinds' path items.
  Object.assign(schemas, dataPlaneSchemas());
  for (const [path, item] of Object.entries(dataPlanePaths()))
    paths[path] = { ...(paths[path] as Json | undefined), ...(item as Json) };
  const responses = Object.fromEntries(
    PROBLEM_CODES.map((c) => [`Problem${c}`, problem(`HTTP ${c} problem.`)]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "agentry gateway",
      version,
      description: "REST access to the agentry.dev/v1alpha1 resources, authorised by Kubernetes RBAC.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}
