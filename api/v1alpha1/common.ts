// Pieces shared by the four kinds: names, references, env, resources, durations and the
// standard Kubernetes Condition. Every field carries a description: it becomes the
// `kubectl explain` text of the generated CRDs.
import { z } from "zod";

export const GROUP = "agentry.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A DNS-1123 label: what Kubernetes accepts for most object names and label values. */
export const dnsLabel = (description: string) =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .meta({ description });

/** Name of an object in the same namespace. */
export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
    .meta({ description });

export const LocalObjectReference = (what: string) =>
  z
    .object({ name: objectName(`Name of the ${what} in the same namespace.`) })
    .strict()
    .meta({ description: `Reference to a ${what} in the same namespace.` });

export const SecretKeyReference = z
  .object({
    name: objectName("Name of the Secret in the same namespace."),
    key: z.string().min(1).max(253).default("api-key").meta({ description: "Key inside the Secret." }),
  })
  .strict()
  .meta({
    description: "A key of a Secret in the same namespace. The value is never copied into status or logs.",
  });

/** A Kubernetes resource quantity such as `500m`, `2`, `1Gi`. */
export const quantity = (description: string) =>
  z
    .union([z.int(), z.string().regex(/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[mkMGTPEun])?$/)])
    .meta({ description, "x-kubernetes-int-or-string": true });

export const ResourceRequirements = z
  .object({
    requests: z
      .record(z.string(), quantity("Requested amount."))
      .optional()
      .meta({ description: "Minimum resources, e.g. {cpu: 250m, memory: 256Mi}; used for scheduling." }),
    limits: z
      .record(z.string(), quantity("Maximum amount."))
      .optional()
      .meta({ description: "Maximum resources, e.g. {cpu: '1', memory: 1Gi}." }),
  })
  .strict()
  .meta({ description: "Compute resources, as in a container's resources." });

export const EnvVar = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/)
      .meta({ description: "Environment variable name." }),
    value: z
      .string()
      .max(32768)
      .optional()
      .meta({ description: "Literal value. Never put secrets here: use valueFrom.secretKeyRef." }),
    valueFrom: z
      .object({
        secretKeyRef: z
          .object({
            name: objectName("Secret name (same namespace)."),
            key: z.string().min(1).max(253).meta({ description: "Key in the Secret." }),
            optional: z
              .boolean()
              .optional()
              .meta({ description: "Start even if the Secret or key is missing." }),
          })
          .strict()
          .optional()
          .meta({ description: "Take the value from a key of a Secret." }),
        configMapKeyRef: z
          .object({
            name: objectName("ConfigMap name (same namespace)."),
            key: z.string().min(1).max(253).meta({ description: "Key in the ConfigMap." }),
            optional: z
              .boolean()
              .optional()
              .meta({ description: "Start even if the ConfigMap or key is missing." }),
          })
          .strict()
          .optional()
          .meta({ description: "Take the value from a key of a ConfigMap." }),
      })
      .strict()
      .optional()
      .meta({ description: "Take the value from a Secret or ConfigMap instead of a literal." }),
  })
  .strict()
  .meta({
    description: "An environment variable of the container.",
    "x-kubernetes-validations": [
      {
        rule: "!(has(self.value) && has(self.valueFrom))",
        message: "set either value or valueFrom, not both",
      },
      {
        rule: "!has(self.valueFrom) || (has(self.valueFrom.secretKeyRef) != has(self.valueFrom.configMapKeyRef))",
        message: "valueFrom needs exactly one of secretKeyRef or configMapKeyRef",
      },
    ],
  });

export const EnvFromSource = z
  .object({
    prefix: z.string().max(253).optional().meta({ description: "Prefix added to every variable name." }),
    secretRef: z
      .object({ name: objectName("Secret name (same namespace).") })
      .strict()
      .optional()
      .meta({ description: "Every key of this Secret becomes a variable." }),
    configMapRef: z
      .object({ name: objectName("ConfigMap name (same namespace).") })
      .strict()
      .optional()
      .meta({ description: "Every key of this ConfigMap becomes a variable." }),
  })
  .strict()
  .meta({
    description: "A Secret or ConfigMap whose keys all become environment variables.",
    "x-kubernetes-validations": [
      {
        rule: "has(self.secretRef) != has(self.configMapRef)",
        message: "set exactly one of secretRef or configMapRef",
      },
    ],
  });

export const envList = () =>
  z
    .array(EnvVar)
    .max(256)
    .optional()
    .meta({ description: "Environment variables of the container.", "x-kubernetes-list-type": "atomic" });

export const envFromList = () =>
  z
    .array(EnvFromSource)
    .max(64)
    .optional()
    .meta({ description: "Secrets and ConfigMaps to expose as environment variables." });

const durationText = () =>
  z
    .string()
    .max(32)
    .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/);

/** A Go-style duration string: `500ms`, `30s`, `5m`, `1h30m`. */
export const duration = (description: string, fallback: string) =>
  durationText()
    .default(fallback)
    .meta({ description: `${description} A duration such as 500ms, 30s, 5m or 1h.` });

/** A Go-style duration string without a default: absent means the feature is off. */
export const optionalDuration = (description: string) =>
  durationText()
    .optional()
    .meta({ description: `${description} A duration such as 30s, 5m or 1h.` });

export const containerImage = (description: string) =>
  z
    .string()
    .min(1)
    .max(512)
    // The characters of an image reference (registry[:port]/path[:tag][@algo:digest]):
    // no whitespace, quotes or shell metacharacters.
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/)
    .meta({ description });

export const stringList = (description: string, maxItems = 256) =>
  z
    .array(z.string().max(32768))
    .max(maxItems)
    .optional()
    .meta({ description, "x-kubernetes-list-type": "atomic" });

export const port = (description: string, fallback: number) =>
  z.int().min(1).max(65535).default(fallback).meta({ description });

/** The standard Kubernetes condition (metav1.Condition). */
export const Condition = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .meta({ description: "Type of the condition, e.g. Ready." }),
    status: z
      .enum(["True", "False", "Unknown"])
      .meta({ description: "Status of the condition: True, False or Unknown." }),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .meta({ description: "The .metadata.generation the condition was computed from." }),
    lastTransitionTime: z.iso
      .datetime()
      .meta({ description: "When the condition last changed from one status to another." }),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .meta({ description: "Machine-readable, CamelCase reason for the last transition." }),
    message: z
      .string()
      .max(32768)
      .meta({ description: "What happened and what to do about it, for a person." }),
  })
  .strict()
  .meta({ description: "A standard Kubernetes condition." });

export const conditions = () =>
  z
    .array(Condition)
    .max(16)
    .optional()
    .meta({
      description: "Current state, as standard conditions (Ready at least).",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    });

export const observedGeneration = () =>
  z.int().min(0).optional().meta({ description: "The .metadata.generation this status was computed from." });

export const timestamp = (description: string) => z.iso.datetime().optional().meta({ description });

/**
 * Condition types every kind uses, after the kstatus conventions GitOps tools read (Flux,
 * Argo CD, `kubectl wait`): Ready for people, Reconciling and Stalled ("abnormal-true": present
 * only while True) for tools.
 */
export const ConditionType = {
  /** True when the resource does what its spec asks; False says why not in reason/message. */
  Ready: "Ready",
  /** True while the operator works toward the spec and expects to get there (kstatus: InProgress). */
  Reconciling: "Reconciling",
  /**
   * True when the operator cannot make progress without a change from someone (an image that
   * cannot be pulled, a name held by another object, a reference missing beyond a bound...);
   * reason and message say what (kstatus: Failed).
   */
  Stalled: "Stalled",
} as const;

export type Condition = z.output<typeof Condition>;
export type EnvVar = z.output<typeof EnvVar>;
export type ResourceRequirements = z.output<typeof ResourceRequirements>;
