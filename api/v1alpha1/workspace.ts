// Workspace: one user's or project's working area, placed onto one sandbox pod of a fleet.
import { z } from "zod";
import {
  conditions,
  LocalObjectReference,
  objectName,
  observedGeneration,
  ResourceRequirements,
  timestamp,
} from "./common.ts";
import { defineKind } from "./kind.ts";

/** Reasons of the Ready condition of a Workspace. */
export const WorkspaceReason = {
  /** Ready=True: placed on a ready sandbox, which serves the workspace. */
  Placed: "Placed",
  /** Ready=False: waiting for a sandbox with room (the fleet is growing). */
  WaitingForCapacity: "WaitingForCapacity",
  /** Ready=False: spec.fleetRef names a SandboxFleet that does not exist. */
  FleetNotFound: "FleetNotFound",
  /** Ready=False: the sandbox is draining; the workspace is being moved. */
  Draining: "Draining",
  /** Ready=True: spec.suspended is true, as the spec asks; the workspace holds no sandbox. */
  Suspended: "Suspended",
  /** Ready=False: the sandbox runtime refused or failed to create the workspace. */
  SandboxError: "SandboxError",
} as const;

export const GitSource = z
  .object({
    url: z
      .string()
      .max(2048)
      .regex(/^(https:\/\/|ssh:\/\/|git@)[^\s]+$/)
      .meta({ description: "Repository URL (https://, ssh:// or git@host:path)." }),
    ref: z.string().max(256).default("main").meta({ description: "Branch, tag or commit to check out." }),
    credentialsSecretRef: LocalObjectReference("Secret")
      .optional()
      .meta({ description: "Secret with the credentials for a private repository (same namespace)." }),
  })
  .strict()
  .meta({ description: "A git repository to clone into the workspace." });

export const WorkspaceSpec = z
  .object({
    fleetRef: LocalObjectReference("SandboxFleet").meta({
      description: "SandboxFleet (same namespace) whose sandboxes host the workspace. Immutable.",
      "x-kubernetes-validations": [
        {
          rule: "self == oldSelf",
          message: "spec.fleetRef is immutable; create a new Workspace to use another fleet",
        },
      ],
    }),
    ownerId: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.@:]*[A-Za-z0-9])?$/)
      .optional()
      .meta({
        description:
          "Owner (user or project id). Workspaces of one owner always share a sandbox while it exists. Immutable.",
      }),
    source: z
      .object({ git: GitSource.optional() })
      .strict()
      .optional()
      .meta({ description: "Where the workspace's initial files come from." }),
    resources: ResourceRequirements.optional(),
    suspended: z
      .boolean()
      .default(false)
      .meta({ description: "When true the workspace is removed from its sandbox; false places it again." }),
  })
  .strict()
  .meta({
    description: "Desired state of the workspace.",
    "x-kubernetes-validations": [
      {
        rule: "has(self.ownerId) == has(oldSelf.ownerId) && (!has(self.ownerId) || self.ownerId == oldSelf.ownerId)",
        message: "spec.ownerId is immutable; create a new Workspace for another owner",
        fieldPath: ".ownerId",
      },
    ],
  });

export const WorkspaceStatus = z
  .object({
    observedGeneration: observedGeneration(),
    phase: z
      .enum(["Pending", "Placed", "Ready", "Draining", "Suspended", "Error"])
      .optional()
      .meta({ description: "Where the workspace is in its life." }),
    sandboxPod: objectName("Sandbox pod the workspace is placed on.").optional(),
    endpoint: z.string().max(1024).optional().meta({ description: "URL of the workspace on its sandbox." }),
    placedAt: timestamp("When the workspace was placed on its sandbox."),
    conditions: conditions(),
  })
  .strict()
  .meta({ description: "Observed state of the workspace." });

export const WorkspaceKind = defineKind({
  kind: "Workspace",
  plural: "workspaces",
  shortNames: ["ws"],
  description: "Workspace is one user's or project's working area, placed on a sandbox of a SandboxFleet.",
  spec: WorkspaceSpec,
  status: WorkspaceStatus,
  printerColumns: [
    { name: "Fleet", type: "string", jsonPath: ".spec.fleetRef.name" },
    { name: "Owner", type: "string", jsonPath: ".spec.ownerId" },
    { name: "Sandbox", type: "string", jsonPath: ".status.sandboxPod" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Endpoint", type: "string", jsonPath: ".status.endpoint", priority: 1 },
  ],
});

export type WorkspaceSpec = z.output<typeof WorkspaceSpec>;
export type WorkspaceStatus = z.output<typeof WorkspaceStatus>;
