// Workspace: one user's or project's working area, placed onto one sandbox pod of a fleet.
import { z } from "zod";
import {
  conditions,
  LocalObjectReference,
  objectName,
  observedGeneration,
  optionalDuration,
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
  /**
   * Ready=True: suspended after spec.idleTimeout without data-plane activity (annotation
   * agentry.dev/idle-suspended); a data-plane request through the gateway wakes it.
   */
  IdleSuspended: "IdleSuspended",
  /** Ready=False: the sandbox runtime refused or failed to create the workspace. */
  SandboxError: "SandboxError",
  /** Ready=False: the sandbox is bringing the workspace's files in (from the store or git). */
  Restoring: "Restoring",
  /** Ready=False: restoring from the store failed (e.g. it is unreachable); retried with backoff. */
  RestoreFailed: "RestoreFailed",
  /** Ready=False: cloning spec.source.git failed; the message has git's reason. Retried with backoff. */
  CloneFailed: "CloneFailed",
} as const;

/** Condition types of a Workspace besides Ready. */
export const WorkspaceConditionType = {
  /**
   * True when the workspace's files are in its object store as of status.lastFlushTime.
   * False: no store is configured (NoStore), nothing is flushed yet (NotFlushed), the last
   * flush failed (FlushFailed), or a drain ended before its flush (Lost: the message says
   * what was lost).
   */
  Durable: "Durable",
} as const;

/** Reasons of the Durable condition. */
export const DurableReason = {
  /** True: the last flush completed. */
  Flushed: "Flushed",
  /** False: neither the fleet nor the agentry install configures an object store. */
  NoStore: "NoStore",
  /** False: placed, but no flush has completed yet (or the workspace is not placed). */
  NotFlushed: "NotFlushed",
  /** False: the last flush failed; it is retried. */
  FlushFailed: "FlushFailed",
  /** False: the sandbox went before its flush completed; changes after the last flush were lost. */
  Lost: "Lost",
} as const;

/**
 * Set by the operator (to the time it suspended the workspace) after spec.idleTimeout without
 * data-plane activity; a workspace carrying it is kept off its sandbox like spec.suspended.
 * Removing it wakes the workspace: the gateway does on a data-plane request.
 */
export const ANNOTATION_IDLE_SUSPENDED = "agentry.dev/idle-suspended";

/** Whether the workspace is suspended for idleness. */
export function isIdleSuspended(ws: { metadata: { annotations?: Record<string, string> } }): boolean {
  return ws.metadata.annotations?.[ANNOTATION_IDLE_SUSPENDED] !== undefined;
}

export const GitSource = z
  .object({
    url: z
      .string()
      .max(2048)
      .regex(/^(https?:\/\/)[^\s]+$/)
      .meta({
        description:
          "Repository URL (https://, or http:// for a server on a trusted network). Cloned once, on the first placement; later placements restore from the fleet's object store.",
      }),
    ref: z.string().max(256).default("main").meta({ description: "Branch, tag or commit to check out." }),
    credentialsSecretRef: LocalObjectReference("Secret").optional().meta({
      description:
        "Secret with the credentials for a private repository (same namespace): keys username and password, or token. Given to git in its environment only; never logged or put in status.",
    }),
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
    idleTimeout: optionalDuration(
      "Suspend the workspace (flushed, its slot freed, phase Suspended) after this long without data-plane activity: no file call or command through the gateway or the sandbox API, and no command running. A data-plane request through the gateway wakes it (placed again and restored) and waits for it; removing the annotation agentry.dev/idle-suspended wakes it too. Takes effect only when the fleet has an object store (without one, suspending would lose the files). Unset: never suspended for idleness.",
    ),
    ttlSecondsAfterCreation: z.int().min(1).max(315_360_000).optional().meta({
      description:
        "Delete the Workspace this many seconds after its creation (an Expired Event says so); its stored files go with it unless spec.retain. With expireAt too, the earlier of the two wins.",
    }),
    expireAt: z.iso.datetime().optional().meta({
      description:
        "Delete the Workspace at this time (RFC 3339; an Expired Event says so); its stored files go with it unless spec.retain. With ttlSecondsAfterCreation too, the earlier of the two wins.",
    }),
    retain: z.boolean().default(false).meta({
      description:
        "Keep the workspace's files in the fleet's object store when the Workspace is deleted (they are flushed first). Default false: deleting the Workspace removes them.",
    }),
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
    lastFlushTime: timestamp("When the last completed flush to the object store began."),
    bytes: z
      .int()
      .min(0)
      .optional()
      .meta({ description: "Size of the workspace's files as of the last flush, in bytes." }),
    sourceCommit: z
      .string()
      .max(64)
      .optional()
      .meta({ description: "Commit spec.source.git was cloned at (on the first placement)." }),
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
    { name: "Last Flush", type: "date", jsonPath: ".status.lastFlushTime", priority: 1 },
  ],
});

export type WorkspaceSpec = z.output<typeof WorkspaceSpec>;
export type WorkspaceStatus = z.output<typeof WorkspaceStatus>;
