// Turns a kind definition into a CustomResourceDefinition with a structural OpenAPI v3
// schema: zod's JSON Schema output, reshaped to what the apiserver accepts.
import { z } from "zod";
import { GROUP, VERSION } from "./common.ts";
import type { KindDefinition } from "./kind.ts";

type Schema = Record<string, unknown>;

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/** Zod → JSON Schema (OpenAPI 3.0 flavour), input side so defaulted fields stay optional. */
export function jsonSchemaOf(schema: z.ZodType): Schema {
  return z.toJSONSchema(schema, { target: "openapi-3.0", io: "input", unrepresentable: "throw" });
}

/**
 * Reshapes a JSON Schema node into a structural schema:
 * - additionalProperties:false is dropped (the apiserver prunes unknown fields anyway);
 * - int-or-string unions become `x-kubernetes-int-or-string` with the permitted anyOf;
 * - zod's safe-integer bounds and its date-time regex are dropped (format says it);
 * - any other union is refused, since structural schemas cannot express it.
 */
export function structural(node: Schema, path = "spec"): Schema {
  const out: Schema = {};
  if (node["x-kubernetes-int-or-string"] === true) {
    out["x-kubernetes-int-or-string"] = true;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
    if (typeof node.description === "string") out.description = node.description;
    return out;
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (key in node) throw new Error(`${path}: ${key} cannot be expressed in a structural CRD schema`);
  }
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "$schema":
      case "id":
        break;
      case "additionalProperties":
        if (value !== false) out[key] = structural(value as Schema, `${path}[*]`);
        break;
      case "properties": {
        const props: Schema = {};
        for (const [name, child] of Object.entries(value as Record<string, Schema>)) {
          props[name] = structural(child, `${path}.${name}`);
        }
        out[key] = props;
        break;
      }
      case "items":
        out[key] = structural(value as Schema, `${path}[]`);
        break;
      case "minimum":
        if (value !== -SAFE_INT) out[key] = value;
        break;
      case "maximum":
        if (value !== SAFE_INT) out[key] = value;
        break;
      case "pattern":
        if (node.format !== "date-time") out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  return out;
}

/** Paths of object properties that have no description (every field needs one for kubectl explain). */
export function undocumented(node: Schema, path = ""): string[] {
  const missing: string[] = [];
  const props = node.properties as Record<string, Schema> | undefined;
  for (const [name, child] of Object.entries(props ?? {})) {
    const p = `${path}.${name}`;
    if (typeof child.description !== "string" || child.description.length === 0) missing.push(p);
    missing.push(...undocumented(child, p));
  }
  if (node.items) missing.push(...undocumented(node.items as Schema, `${path}[]`));
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    missing.push(...undocumented(node.additionalProperties as Schema, `${path}[*]`));
  }
  return missing;
}

export function crdFor(def: KindDefinition): Schema {
  const spec = structural(jsonSchemaOf(def.spec), "spec");
  const status = structural(jsonSchemaOf(def.status), "status");
  const openAPIV3Schema: Schema = {
    type: "object",
    description: def.description,
    required: ["spec"],
    properties: {
      apiVersion: {
        type: "string",
        description: "APIVersion defines the versioned schema of this representation of an object.",
      },
      kind: {
        type: "string",
        description: "Kind is a string value representing the REST resource this object represents.",
      },
      metadata: { type: "object" },
      spec,
      status,
    },
    "x-kubernetes-validations": def.nameRules,
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "agentry", "app.kubernetes.io/part-of": "agentry" },
    },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources: { status: {}, ...(def.scale ? { scale: def.scale } : {}) },
          additionalPrinterColumns: [
            ...def.printerColumns,
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}
