// AgentRuntime: one long-running agent. The operator makes exactly one Pod and one Service.
import { z } from "zod";
import {
  conditions,
  containerImage,
  envFromList,
  envList,
  LocalObjectReference,
  objectName,
  observedGeneration,
  port,
  quantity,
  ResourceRequirements,
  SecretKeyReference,
  stringList,
} from "./common.ts";
import { defineKind } from "./kind.ts";

export const AgentRuntimePhase = z.enum(["Pending", "Starting", "Ready", "Error", "Suspended"]).meta({
  description:
    "Pending: waiting for the Pod to be created or scheduled. Starting: the Pod runs but the agent is not ready yet. " +
    "Ready: the agent answers its readiness check (after a spec change, possibly its earlier Pod while the new one starts: see the Reconciling condition). Error: the agent cannot run (see readinessReason). " +
    "Suspended: spec.suspended is true; the Pod is removed and the Service kept.",
});
export type AgentRuntimePhase = z.output<typeof AgentRuntimePhase>;

/** Reasons of the Ready condition of an AgentRuntime. */
export const AgentRuntimeReason = {
  /** Ready=True: the Pod is Ready and the agent answered /readyz. */
  AgentReady: "AgentReady",
  /** Ready=False: the Pod is being created, scheduled or pulled. */
  PodPending: "PodPending",
  /** Ready=False: the Pod cannot be scheduled onto any node. */
  Unschedulable: "Unschedulable",
  /** Ready=False: the image cannot be pulled. */
  ImagePullError: "ImagePullError",
  /** Ready=False: the container keeps crashing. */
  CrashLoop: "CrashLoop",
  /** Ready=False: the container runs but its readiness check fails. */
  NotReady: "NotReady",
  /** Ready=False: the agent reported itself as failed on /readyz. */
  AgentError: "AgentError",
  /**
   * Ready=True and Reconciling=True (or Stalled=True): the spec changed, and the Pod of the
   * earlier spec serves while the new one starts (status.podName names the serving Pod).
   * Written once the new Pod has taken 5 s (before that, status.observedGeneration is behind
   * metadata.generation), or at once with Stalled=True.
   */
  Replacing: "Replacing",
  /** Ready=True: spec.suspended is true, as the spec asks (kstatus: Current). */
  Suspended: "Suspended",
  /** Ready=False: spec.workspaceRef names a Workspace that does not exist or is not placed. */
  WorkspaceNotReady: "WorkspaceNotReady",
  /** Ready=False: the operator could not create or update a child object. */
  ReconcileError: "ReconcileError",
  /**
   * Ready=False: an object the AgentRuntime needs (its Service, NetworkPolicy, claim or Pod)
   * has the name of an existing object it does not control; the message names it. agentry
   * leaves that object alone, and deleting the AgentRuntime does too.
   */
  NameConflict: "NameConflict",
} as const;

export const ModelSettings = z
  .object({
    provider: z
      .enum([
        "openai",
        "anthropic",
        "google",
        "azure-openai",
        "bedrock",
        "ollama",
        "openai-compatible",
        "echo",
      ])
      .meta({ description: "Model provider. `echo` answers without any model (dry runs and tests)." }),
    model: z.string().min(1).max(256).meta({ description: "Model name as the provider knows it." }),
    endpoint: z
      .string()
      .max(2048)
      .regex(/^https?:\/\/[^\s]+$/)
      .optional()
      .meta({ description: "Base URL of the provider's API, for self-hosted or compatible endpoints." }),
    credentialsSecretRef: SecretKeyReference.optional().meta({
      description:
        "Secret key holding the provider API key; mounted as an environment variable, never copied.",
    }),
  })
  .strict()
  .meta({ description: "Which model the agent talks to, and with which credentials." });

export const EgressRule = z
  .object({
    cidr: z
      .string()
      .max(64)
      .regex(/^[0-9a-fA-F:.]+\/[0-9]{1,3}$/)
      .meta({ description: "Destination CIDR block, e.g. 203.0.113.0/24." }),
    ports: z
      .array(z.int().min(1).max(65535))
      .max(32)
      .optional()
      .meta({ description: "TCP ports allowed to that block; all ports when empty." }),
  })
  .strict()
  .meta({ description: "One allowed egress destination." });

export const ManagedNetworkPolicy = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .meta({
        description:
          "Create and own a NetworkPolicy for the agent Pod (the default). false opts out: no policy is made, " +
          "and the Pod is reachable and reaches whatever the namespace's own policies allow.",
      }),
    egress: z
      .array(EgressRule)
      .max(64)
      .optional()
      .meta({
        description:
          "Allowed egress besides DNS and the sandboxes of the workspace's fleet. Nothing else leaves the Pod while " +
          "the policy is enabled: an agent that calls a hosted model needs its API here (e.g. cidr 0.0.0.0/0, ports [443]).",
      }),
  })
  .strict()
  .meta({
    description:
      "The managed NetworkPolicy, on by default: ingress only from the agentry gateway, the operator and the agent's " +
      "own namespace; egress to DNS, the sandbox pods of the fleet its workspace (spec.workspaceRef) is on, and the " +
      "listed destinations. NetworkPolicies add up: another policy selecting the Pod can allow more.",
  });

export const AgentStorage = z
  .object({
    size: quantity("Size of the PersistentVolumeClaim, e.g. 1Gi."),
    storageClassName: objectName("StorageClass of the claim; the cluster default when unset.").optional(),
    mountPath: z
      .string()
      .max(1024)
      .regex(/^\/[^\0]*$/)
      .default("/data")
      .meta({ description: "Where the volume is mounted in the agent container." }),
    bootstrapConfigMap: objectName(
      "ConfigMap whose files are copied into the volume at start, without overwriting files that already exist.",
    ).optional(),
  })
  .strict()
  .meta({
    description:
      "A PersistentVolumeClaim (ReadWriteOnce) for the agent's data. With it, a spec change deletes the old Pod before the new one starts (without it, the new Pod starts beside the old one, which serves until the new one is Ready).",
  });

export const AgentRuntimeSpec = z
  .object({
    image: containerImage("Container image of the agent, e.g. ghcr.io/acme/agent:1.4.2."),
    imagePullPolicy: z
      .enum(["Always", "IfNotPresent", "Never"])
      .optional()
      .meta({ description: "Image pull policy; the Kubernetes default when unset." }),
    command: stringList("Entrypoint override."),
    args: stringList("Arguments to the entrypoint."),
    env: envList(),
    envFrom: envFromList(),
    port: port("Port the agent's HTTP API listens on; the Service exposes it.", 8080),
    resources: ResourceRequirements.optional(),
    serviceAccountName: objectName(
      "ServiceAccount the agent Pod runs as; the namespace default when unset.",
    ).optional(),
    workspaceRef: LocalObjectReference("Workspace").optional().meta({
      description: "Workspace the agent works in; the agent is pointed at that workspace's sandbox.",
    }),
    model: ModelSettings.optional(),
    runtimeClassName: objectName("RuntimeClass for stronger isolation, e.g. gvisor or kata.").optional(),
    networkPolicy: ManagedNetworkPolicy.default({ enabled: true }),
    storage: AgentStorage.optional(),
    suspended: z
      .boolean()
      .default(false)
      .meta({ description: "When true the Pod is removed and the Service kept; false starts it again." }),
  })
  .strict()
  .meta({ description: "Desired state of the agent." });

export const AgentRuntimeStatus = z
  .object({
    observedGeneration: observedGeneration(),
    phase: AgentRuntimePhase.optional(),
    readinessReason: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: "One line saying why the agent is or is not ready, and what to do about it." }),
    podName: objectName(
      "Name of the agent Pod that serves: `<name>-<template hash>`; during a spec change, the old Pod until the new one is Ready.",
    ).optional(),
    serviceName: objectName("Name of the agent Service.").optional(),
    endpoint: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: "In-cluster URL of the agent's HTTP API." }),
    restartCount: z.int().min(0).optional().meta({ description: "Container restarts of the current Pod." }),
    templateHash: z
      .string()
      .max(64)
      .optional()
      .meta({ description: "Hash of the Pod template in effect; a new hash replaces the Pod." }),
    conditions: conditions(),
  })
  .strict()
  .meta({ description: "Observed state of the agent." });

export const AgentRuntimeKind = defineKind({
  kind: "AgentRuntime",
  plural: "agentruntimes",
  shortNames: ["ar"],
  description: "AgentRuntime runs one long-lived agent as exactly one Pod and one Service.",
  spec: AgentRuntimeSpec,
  status: AgentRuntimeStatus,
  printerColumns: [
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: "Endpoint", type: "string", jsonPath: ".status.endpoint" },
    { name: "Reason", type: "string", jsonPath: ".status.readinessReason", priority: 1 },
    { name: "Restarts", type: "integer", jsonPath: ".status.restartCount", priority: 1 },
  ],
});

export type AgentRuntimeSpec = z.output<typeof AgentRuntimeSpec>;
export type AgentRuntimeStatus = z.output<typeof AgentRuntimeStatus>;
