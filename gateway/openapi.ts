// The OpenAPI 3.1 document of the gateway, generated from the same zod schemas as the CRDs
// (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Built once at start, and written to
// openapi.json by `npm run gen` (the committed contract clients are generated from).
//
// Each kind has two schemas: `<Kind>` is the object as the gateway answers it (apiVersion,
// kind, metadata.name and namespace always there), `<Kind>Input` what a request may send (the
// zod schema's input side: defaulted fields optional; apiVersion, kind optional; no status). Paths come in groups (`PATH_GROUPS`); a new family of routes adds its group.
import { z } from "zod";
import { KINDS, NAMESPACE_PATTERN, type KindDefinition } from "../api/v1alpha1/index.ts";
import { dataPlanePaths, dataPlaneSchemas } from "./openapi.dataplane.ts";
import { LABEL_SELECTOR_MAX, LABEL_SELECTOR_PATTERN } from "./routes/validate.ts";
import {
  EVENT_KIND_PATTERN,
  EVENT_NAME_PATTERN,
  EVENTS_DEFAULT_LIMIT,
  EVENTS_MAX_LIMIT,
} from "./routes/events.ts";
import { PERMISSION_ACTIONS, PERMISSIONS_FOR_PATTERN } from "./routes/permissions.ts";

type Json = Record<string, unknown>;

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});
export const errors = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/Problem${c}` }]));
const PROBLEM_TEXT: Record<number, string> = {
  400: "Bad request: a malformed path name, query parameter, header or body (problem+json names it).",
  401: "No valid bearer token.",
  403: "Kubernetes RBAC does not allow the caller this verb (or an admission rule denied the write).",
  404: "No such object (or route).",
  409: "Conflict: the object exists, changed meanwhile, or another request with this Idempotency-Key is in flight.",
  410: "The continue token has expired: list again from the start.",
  412: "The If-Match precondition failed: the object changed.",
  413: "The request body exceeds the size limit.",
  415: "Send JSON (application/json, or application/merge-patch+json for PATCH).",
  422: "The object is invalid (errors name each field) or an admission rule refused it.",
  429: "Rate limited: retry after the Retry-After seconds.",
  431: "The request line and headers exceed 64 KiB.",
  502: "The Kubernetes API server failed or could not be reached.",
  503: "The gateway cannot take writes now (its audit database is unavailable).",
};
const PROBLEM_CODES = Object.keys(PROBLEM_TEXT).map(Number);

export const param = (
  name: string,
  where: "path" | "query" | "header",
  schema: Json,
  description: string,
  required = where === "path",
) => ({ name, in: where, required, description, schema });

export const nsParam = param(
  "namespace",
  "path",
  { type: "string", pattern: NAMESPACE_PATTERN, minLength: 1, maxLength: 63 },
  "Namespace.",
);
export const nameParam = (def: KindDefinition) =>
  param(
    "name",
    "path",
    { type: "string", pattern: "^[a-z]([-a-z0-9]*[a-z0-9])?$", minLength: 1, maxLength: def.maxNameLength },
    `${def.kind} name.`,
  );
export const idemParam = param(
  "Idempotency-Key",
  "header",
  { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" },
  "A retried POST with the same key (and body) returns the first answer instead of writing again.",
);
const etagSchema = { type: "string", pattern: '^(W/)?"?[0-9]+"?$', maxLength: 64 };
const ifMatch = param(
  "If-Match",
  "header",
  etagSchema,
  "ETag (resourceVersion) the object must still have; 412 when it changed.",
);
const listParams = [
  param("limit", "query", { type: "integer", minimum: 1, maximum: 500 }, "Page size (at most 500)."),
  param(
    "continue",
    "query",
    {
      type: "string",
      format: "kubernetes-continue-token",
      pattern: "^[A-Za-z0-9_-]+={0,2}$",
      maxLength: 4096,
    },
    "`metadata.continue` of the previous page, as it was given (opaque; 410 once it has expired).",
  ),
  param(
    "labelSelector",
    "query",
    { type: "string", pattern: LABEL_SELECTOR_PATTERN, maxLength: LABEL_SELECTOR_MAX },
    "Kubernetes label selector: comma-separated `key`, `!key`, `key=value`, `key!=value`, `key in (a,b)`, `key notin (a)`.",
  ),
];

const LIST_ERRORS = [400, 401, 403, 410, 429, 431, 502];
const READ_ERRORS = [400, 401, 403, 404, 429, 431, 502];
const WRITE_ERRORS = [400, 401, 403, 404, 409, 413, 415, 422, 429, 431, 502, 503];

/** A small valid object of each kind: the document's request examples (and a client's start). */
export const EXAMPLES: Record<string, { metadata: { name: string }; spec: Json }> = {
  AgentRuntime: { metadata: { name: "example-agent" }, spec: { image: "busybox:1.36" } },
  Pipeline: {
    metadata: { name: "example-pipeline" },
    spec: { schedule: "@once", steps: [{ name: "hello", image: "busybox:1.36" }] },
  },
  SandboxFleet: {
    metadata: { name: "example-fleet" },
    spec: { template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 2 },
  },
  Workspace: { metadata: { name: "example-workspace" }, spec: { fleetRef: { name: "example-fleet" } } },
};

/** The object as answered, and as sent. */
function schemasOf(def: KindDefinition): { output: Json; input: Json } {
  const convert = (io: "input" | "output") => {
    const s = z.toJSONSchema(def.object, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
    delete s.$schema;
    return s as Json & { properties: Record<string, Json>; required?: string[] };
  };
  // Answers carry what the apiserver stored, whose CRD defaults do not reach every nested
  // default of the zod schema: the input side describes them faithfully, plus what the
  // apiserver always sets.
  const output = convert("input");
  output.properties.status = { ...output.properties.status, readOnly: true };
  output.properties.metadata = {
    ...output.properties.metadata,
    required: ["name", "namespace"],
  };
  const input = convert("input");
  delete input.properties.status;
  input.properties.apiVersion = { ...input.properties.apiVersion, description: "Optional; filled in." };
  input.properties.kind = { ...input.properties.kind, description: "Optional; filled in." };
  input.properties.metadata = {
    ...input.properties.metadata,
    description:
      "Object metadata. name (or generateName on create) and namespace, when given, must match the URL.",
  };
  input.required = ["spec"];
  return {
    output: { ...output, description: def.description },
    input: {
      ...input,
      description: `${def.kind} as a request sends it: defaulted fields may be left out; status is ignored.`,
    },
  };
}

function listSchema(def: KindDefinition): Json {
  return {
    type: "object",
    required: ["apiVersion", "kind", "metadata", "items"],
    properties: {
      apiVersion: { type: "string", const: def.apiVersion },
      kind: { type: "string", const: `${def.kind}List` },
      metadata: {
        type: "object",
        properties: {
          continue: { type: "string", description: "Pass as `continue` to get the next page." },
          remainingItemCount: {
            type: "integer",
            minimum: 0,
            description:
              "How many objects follow this page, when the apiserver can tell (a namespace's list without a label selector).",
          },
          resourceVersion: { type: "string" },
        },
      },
      items: { type: "array", items: { $ref: `#/components/schemas/${def.kind}` } },
    },
  };
}

function kindPaths(def: KindDefinition): Json {
  const ref = { $ref: `#/components/schemas/${def.kind}` };
  const inputRef = { $ref: `#/components/schemas/${def.kind}Input` };
  const listRef = { $ref: `#/components/schemas/${def.kind}List` };
  const createBody = {
    required: true,
    content: {
      "application/json": {
        examples: { [def.singular]: { summary: `A small ${def.kind}`, value: EXAMPLES[def.kind] } },
        schema: {
          allOf: [
            inputRef,
            {
              required: ["metadata"],
              properties: {
                metadata: {
                  anyOf: [
                    { required: ["name"], properties: { name: { type: "string" } } },
                    { required: ["generateName"], properties: { generateName: { type: "string" } } },
                  ],
                },
              },
            },
          ],
        },
      },
    },
  };
  const mergePatch = {
    type: "object",
    additionalProperties: true,
    description: `Fields of the ${def.kind} to change; null removes a field (RFC 7386).`,
  };
  const one = (code: number, description: string) => ({
    [String(code)]: {
      description,
      headers: { ETag: { description: "The resourceVersion, quoted.", schema: { type: "string" } } },
      content: { "application/json": { schema: ref } },
    },
  });
  const base = `/v1/namespaces/{namespace}/${def.plural}`;
  const tags = [def.kind];
  // What a client does next with the object it created (and how Schemathesis chains calls).
  const target = { namespace: "$request.path.namespace", name: "$response.body#/metadata/name" };
  const next: [string, string][] = [
    ["read", `read${def.kind}`],
    ["readStatus", `read${def.kind}Status`],
    ["replace", `replace${def.kind}`],
    ["patch", `patch${def.kind}`],
    ["delete", `delete${def.kind}`],
  ];
  if (def.kind === "Pipeline") next.push(["run", "runPipeline"]);
  const createdLinks: Json = Object.fromEntries(
    next.map(([name, operationId]) => [name, { operationId, parameters: target }]),
  );
  const a = /^[AEIOU]/.test(def.kind) ? "an" : "a";
  const paths: Json = {
    [base]: {
      parameters: [nsParam],
      get: {
        operationId: `list${def.kind}`,
        tags,
        summary: `List ${def.plural} in a namespace`,
        parameters: listParams,
        responses: {
          "200": { description: "A page of objects.", content: { "application/json": { schema: listRef } } },
          ...errors(...LIST_ERRORS),
        },
      },
      post: {
        operationId: `create${def.kind}`,
        tags,
        summary: `Create ${a} ${def.kind}`,
        parameters: [idemParam],
        requestBody: createBody,
        responses: {
          "201": { ...(one(201, "Created.")["201"] as Json), links: createdLinks },
          ...errors(...WRITE_ERRORS),
        },
      },
    },
    [`${base}/{name}`]: {
      parameters: [nsParam, nameParam(def)],
      get: {
        operationId: `read${def.kind}`,
        tags,
        summary: `Read ${a} ${def.kind}`,
        parameters: [param("If-None-Match", "header", etagSchema, "Answer 304 when the ETag still matches.")],
        responses: {
          ...one(200, "The object."),
          "304": { description: "Not modified." },
          ...errors(...READ_ERRORS),
        },
      },
      put: {
        operationId: `replace${def.kind}`,
        tags,
        summary: `Replace ${a} ${def.kind} (status is ignored)`,
        parameters: [ifMatch],
        requestBody: { required: true, content: { "application/json": { schema: inputRef } } },
        responses: { ...one(200, "Replaced."), ...errors(...WRITE_ERRORS, 412) },
      },
      patch: {
        operationId: `patch${def.kind}`,
        tags,
        summary: `Change ${a} ${def.kind} by a JSON merge patch (RFC 7386); status is ignored`,
        parameters: [ifMatch],
        requestBody: {
          required: true,
          content: {
            "application/merge-patch+json": { schema: mergePatch },
            "application/json": { schema: mergePatch },
          },
        },
        responses: { ...one(200, "Patched."), ...errors(...WRITE_ERRORS, 412) },
      },
      delete: {
        operationId: `delete${def.kind}`,
        tags,
        summary: `Delete ${a} ${def.kind}`,
        parameters: [ifMatch],
        responses: {
          "200": {
            description: "Deletion accepted (the object, while finalizers run, or a Status).",
            content: { "application/json": { schema: { type: "object" } } },
          },
          ...errors(400, 401, 403, 404, 409, 412, 422, 429, 431, 502, 503),
        },
      },
    },
    [`${base}/{name}/status`]: {
      parameters: [nsParam, nameParam(def)],
      get: {
        operationId: `read${def.kind}Status`,
        tags,
        summary: `Read the status of ${a} ${def.kind} (written by the operator; read-only here)`,
        responses: {
          "200": {
            description: "The status.",
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["status"],
                  properties: { status: { type: "object" } },
                },
              },
            },
          },
          ...errors(...READ_ERRORS),
        },
      },
    },
    [`/v1/${def.plural}`]: {
      get: {
        operationId: `list${def.kind}AllNamespaces`,
        tags,
        summary: `List ${def.plural} in every namespace the caller may list them in`,
        description:
          "Cluster-wide when the caller may list them cluster-wide; otherwise the namespaces where " +
          "RBAC lets the caller list them, in name order, paged by `limit` and `continue`.",
        parameters: listParams,
        responses: {
          "200": { description: "A page of objects.", content: { "application/json": { schema: listRef } } },
          ...errors(...LIST_ERRORS),
        },
      },
    },
    [`/v1/watch/namespaces/{namespace}/${def.plural}`]: {
      parameters: [nsParam],
      get: {
        operationId: `watch${def.kind}`,
        tags,
        summary: `Watch ${def.plural} in a namespace (Server-Sent Events)`,
        description:
          "Events `ADDED`, `MODIFIED`, `DELETED` with the object as data; resumable with `Last-Event-ID`; " +
          "`event: reset` means list again, `event: revoked` that the caller may no longer watch.",
        parameters: [
          param("Last-Event-ID", "header", { type: "string", maxLength: 256 }, "Resume after this event id."),
        ],
        responses: {
          "200": {
            description: "An event stream.",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          ...errors(400, 401, 403, 429, 431, 503),
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
          ...errors(400, 401, 403, 404, 409, 422, 429, 431, 502, 503),
        },
      },
    };
  }
  return paths;
}

/** Path items of several groups; operations of one path from different groups are merged. */
export function mergePaths(groups: Json[]): Json {
  const paths: Json = {};
  for (const group of groups)
    for (const [path, item] of Object.entries(group))
      paths[path] = { ...(paths[path] as Json | undefined), ...(item as Json) };
  return paths;
}

/** The caller's own identity (what the web console shows as "signed in as"). */
function identityPaths(): Json {
  return {
    "/v1/whoami": {
      get: {
        operationId: "whoAmI",
        tags: ["Identity"],
        summary: "Who the gateway takes the caller to be",
        description:
          "The user and groups the gateway authenticated the bearer token as: the identity it " +
          "impersonates towards the apiserver and records in the audit log.",
        responses: {
          "200": {
            description: "The caller's identity.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Identity" } } },
          },
          ...errors(401, 429, 431),
        },
      },
    },
  };
}

/** A namespace's Kubernetes Events (routes/events.ts). */
function eventPaths(): Json {
  const q = (name: string, schema: Json, description: string) => param(name, "query", schema, description);
  return {
    "/v1/namespaces/{namespace}/events": {
      parameters: [nsParam],
      get: {
        operationId: "listEvents",
        tags: ["Events"],
        summary: "Recent Kubernetes Events of a namespace, newest first (RBAC: list events)",
        description:
          "Read from the apiserver as the caller. Filter by the object they are about (kind and " +
          "name) and by type. Events expire in the apiserver (an hour by default).",
        parameters: [
          q(
            "kind",
            { type: "string", pattern: EVENT_KIND_PATTERN },
            "Kind of the object, e.g. AgentRuntime.",
          ),
          q("name", { type: "string", pattern: EVENT_NAME_PATTERN, maxLength: 253 }, "Name of the object."),
          q("type", { type: "string", enum: ["Normal", "Warning"] }, "Only events of this type."),
          q(
            "limit",
            { type: "integer", minimum: 1, maximum: EVENTS_MAX_LIMIT, default: EVENTS_DEFAULT_LIMIT },
            "At most this many, the newest.",
          ),
        ],
        responses: {
          "200": {
            description: "The events, newest first.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/EventList" } } },
          },
          ...errors(400, 401, 403, 429, 431, 502),
        },
      },
    },
  };
}

/** What the caller may do in a namespace (routes/permissions.ts). */
function permissionPaths(): Json {
  const plurals = KINDS.map((k) => k.plural);
  return {
    "/v1/namespaces/{namespace}/permissions": {
      parameters: [nsParam],
      get: {
        operationId: "readPermissions",
        tags: ["Identity"],
        summary:
          "What the caller may do in a namespace (one SelfSubjectAccessReview per action, as the caller)",
        description:
          "For dashboards that show only the controls a caller may use. Each action is asked of the " +
          "apiserver as the caller; `reason` says why not (or which binding allows it). With `for`, only " +
          "that kind's actions are asked (about that object, given as plural/name). Advice only: every " +
          "route still decides for itself.",
        parameters: [
          param(
            "for",
            "query",
            { type: "string", pattern: PERMISSIONS_FOR_PATTERN, maxLength: 300 },
            `Only the actions on one kind (${plurals.join(", ")}), or, as \`plural/name\`, about one object of it.`,
          ),
        ],
        responses: {
          "200": {
            description: "The actions and whether the caller may do each.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Permissions" } } },
          },
          ...errors(400, 401, 403, 429, 431, 502, 503),
        },
      },
    },
  };
}

/** The answer of GET .../permissions: one member per action of PERMISSION_ACTIONS. */
function permissionsSchema(): Json {
  const answer = { $ref: "#/components/schemas/PermissionAnswer" };
  return {
    Permissions: {
      type: "object",
      required: ["namespace", "user", "actions"],
      properties: {
        namespace: { type: "string" },
        user: { type: "string", description: "The caller, as RBAC sees it." },
        resource: { type: "string", description: "The kind asked about, when `for` named one." },
        name: { type: "string", description: "The object asked about, when `for` named one." },
        actions: {
          type: "object",
          description: "Each action asked (all of them, or those of the kind `for` names).",
          additionalProperties: false,
          properties: Object.fromEntries(
            Object.entries(PERMISSION_ACTIONS).map(([k, a]) => [
              k,
              {
                ...answer,
                description: `${a.does}: ${a.verb} ${a.resource}${"subresource" in a ? `/${a.subresource}` : ""}`,
              },
            ]),
          ),
        },
      },
    },
    PermissionAnswer: {
      type: "object",
      required: ["allowed", "verb", "resource", "reason"],
      properties: {
        allowed: { type: "boolean" },
        verb: { type: "string" },
        resource: { type: "string" },
        subresource: { type: "string" },
        reason: {
          type: "string",
          description: "Who may not do what, and what it would need; or what allows it.",
        },
      },
    },
  };
}

/** Path groups of the document; each returns its paths (a new family of routes adds one). */
export const PATH_GROUPS: (() => Json)[] = [
  identityPaths,
  permissionPaths,
  eventPaths,
  () => Object.assign({}, ...KINDS.map(kindPaths)) as Json,
  // The data plane (openapi.dataplane.ts): files, exec, tasks, runs and logs.
  () =>
    dataPlanePaths({
      namespace: nsParam,
      name: (kind) => nameParam(KINDS.find((k) => k.kind === kind)!),
    }),
];

/** `maxExecSeconds`: the gateway's --max-exec in seconds (the committed document has the default). */
export function openApiDocument(version = "0.1.0", options: { maxExecSeconds?: number } = {}): Json {
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
          items: {
            type: "object",
            required: ["path", "message"],
            properties: { path: { type: "string" }, message: { type: "string" } },
          },
        },
      },
    },
    EventList: {
      type: "object",
      required: ["items"],
      properties: { items: { type: "array", items: { $ref: "#/components/schemas/Event" } } },
    },
    Event: {
      type: "object",
      required: ["type", "reason", "message", "count", "lastTime", "object", "source"],
      properties: {
        type: { type: "string", description: "Normal or Warning." },
        reason: { type: "string" },
        message: { type: "string" },
        count: { type: "integer", description: "How many times it happened." },
        lastTime: { type: ["string", "null"], description: "When it was last seen (RFC 3339)." },
        object: {
          type: "object",
          required: ["kind", "name"],
          properties: { kind: { type: "string" }, name: { type: "string" } },
        },
        source: { type: "string", description: "The component that reported it." },
      },
    },
    Identity: {
      type: "object",
      required: ["user", "groups"],
      properties: {
        user: { type: "string", description: "User name, as RBAC sees it." },
        groups: { type: "array", items: { type: "string" }, description: "Groups, as RBAC sees them." },
      },
    },
    RunAccepted: {
      type: "object",
      required: ["requestId", "pipeline", "message"],
      properties: {
        requestId: { type: "string" },
        pipeline: {
          type: "object",
          required: ["namespace", "name"],
          properties: { namespace: { type: "string" }, name: { type: "string" }, uid: { type: "string" } },
        },
        message: { type: "string" },
      },
    },
  };
  for (const def of KINDS) {
    const { output, input } = schemasOf(def);
    schemas[def.kind] = output;
    schemas[`${def.kind}Input`] = input;
    schemas[`${def.kind}List`] = listSchema(def);
  }
  Object.assign(schemas, dataPlaneSchemas(options.maxExecSeconds), permissionsSchema());
  const responses = Object.fromEntries(
    PROBLEM_CODES.map((c) => [
      `Problem${c}`,
      // Node's HTTP parser answers 431 itself, with no body.
      c === 431 ? { description: PROBLEM_TEXT[c] } : problem(PROBLEM_TEXT[c]!),
    ]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "agentry gateway",
      version,
      description:
        "REST access to the agentry.dev/v1alpha1 resources, authorised by Kubernetes RBAC (every call " +
        "is made to the apiserver as the caller). Errors are RFC 9457 problem+json.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    tags: [
      { name: "Identity", description: "The caller as the gateway authenticated it." },
      ...KINDS.map((k) => ({ name: k.kind, description: k.description })),
    ],
    paths: mergePaths(PATH_GROUPS.map((g) => g())),
    components: {
      schemas,
      responses,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}
