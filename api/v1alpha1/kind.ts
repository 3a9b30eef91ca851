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
const GENERATE_NAME_PATTERN = "^[a-z][-a-z0-9]*$";
export const NAMESPACE_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

// Label and annotation keys as Kubernetes takes them (a qualified name: an optional DNS
// subdomain prefix and "/", then at most 63 characters), written a little narrower than
// the apiserver (a prefix of at most four DNS labels of at most 62 characters) so that a
// regular expression alone bounds its length: whatever matches, the apiserver accepts.
const DNS_LABEL = "[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?";
const QUALIFIED_NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
export const QUALIFIED_NAME_PATTERN = `^(${DNS_LABEL}(\\.${DNS_LABEL}){0,3}/)?${QUALIFIED_NAME}$`;
export const LABEL_VALUE_PATTERN = `^(${QUALIFIED_NAME})?$`;
const QUALIFIED_NAME_MESSAGE =
  "a key is an optional DNS subdomain prefix and '/' followed by at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

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
      generateName: z
        .string()
        .max(maxNameLength - 5, `at most ${maxNameLength - 5} characters (the apiserver adds 5)`)
        .regex(
          new RegExp(GENERATE_NAME_PATTERN),
          "must be the start of a DNS label: lowercase letters, digits and '-', starting with a letter",
        )
        .optional(),
      namespace: z.string().max(63).regex(new RegExp(NAMESPACE_PATTERN), "must be a DNS label").optional(),
      labels: z
        .record(
          z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), QUALIFIED_NAME_MESSAGE),
          z
            .string()
            .regex(
              new RegExp(LABEL_VALUE_PATTERN),
              "a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)",
            ),
        )
        .optional(),
      annotations: z
        .record(z.string().regex(new RegExp(QUALIFIED_NAME_PATTERN), QUALIFIED_NAME_MESSAGE), z.string())
        .optional(),
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
