// The description of one custom resource kind: its zod schemas plus what the CRD needs
// besides them (names, printer columns, subresources, rules on metadata). The CRD YAML,
// the gateway's validation and OpenAPI document all come from these definitions.
import { z } from "zod";
import { API_VERSION } from "./common.ts";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

export interface KindInput<Spec extends z.ZodType, Status extends z.ZodType> {
  kind: string;
  plural: string;
  shortNames: string[];
  description: string;
  spec: Spec;
  status: Status;
  printerColumns: PrinterColumn[];
  /** Longest metadata.name allowed, so every derived child name stays valid (default 63). */
  maxNameLength?: number;
  /** Why names are limited to maxNameLength, for the error message. */
  nameLimitReason?: string;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

const NAME_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

export function defineKind<Spec extends z.ZodType, Status extends z.ZodType>(input: KindInput<Spec, Status>) {
  const maxNameLength = input.maxNameLength ?? 63;
  const nameRules: CelRule[] = [
    {
      rule: `self.metadata.name.size() <= ${maxNameLength}`,
      message: `metadata.name must be at most ${maxNameLength} characters${input.nameLimitReason ? ` (${input.nameLimitReason})` : ""}; choose a shorter name`,
      reason: "FieldValueInvalid",
    },
    {
      rule: `self.metadata.name.matches('${NAME_PATTERN}')`,
      message:
        "metadata.name must be a DNS label: lowercase letters, digits and '-', starting with a letter (it names Services and labels)",
      reason: "FieldValueInvalid",
    },
  ];
  const metadata = z
    .looseObject({
      name: z
        .string()
        .max(maxNameLength, `at most ${maxNameLength} characters`)
        .regex(
          new RegExp(NAME_PATTERN),
          "must be a DNS label: lowercase letters, digits and '-', starting with a letter",
        )
        .optional(),
      namespace: z.string().max(63).optional(),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .meta({ description: "Standard object metadata." });
  const object = z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(input.kind),
    metadata,
    spec: input.spec,
    status: input.status.optional(),
  });
  return {
    ...input,
    singular: input.kind.toLowerCase(),
    categories: ["agentry"],
    apiVersion: API_VERSION,
    maxNameLength,
    nameRules,
    /** Validates a whole object as the gateway receives it. */
    object,
  };
}

export type KindDefinition = ReturnType<typeof defineKind>;
