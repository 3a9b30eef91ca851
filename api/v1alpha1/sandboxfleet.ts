// SandboxFleet: a pool of sandbox pods (one Deployment) scaled between min and max from
// workspace demand, a warm-empty target and load pressure.
import { z } from "zod";
import {
  LocalObjectReference,
  conditions,
  containerImage,
  duration,
  envList,
  objectName,
  observedGeneration,
  port,
  ResourceRequirements,
  stringList,
  timestamp,
} from "./common.ts";
import { defineKind } from "./kind.ts";

/** Reasons of the Ready condition of a SandboxFleet. */
export const SandboxFleetReason = {
  /** Ready=True: the Deployment has the desired number of ready sandboxes. */
  FleetReady: "FleetReady",
  /** Ready=False (transient): sandboxes are starting or being removed. */
  Scaling: "Scaling",
  /** Ready=False: the fleet is at maxReplicas and cannot place every workspace. */
  AtCapacity: "AtCapacity",
  /** Ready=False: the operator could not create or update the Deployment. */
  ReconcileError: "ReconcileError",
  /**
   * Ready=False: the fleet's Deployment or NetworkPolicy has the name of an existing object the
   * fleet does not control; the message names it. agentry leaves that object alone (and so does
   * deleting the fleet), and the fleet runs no sandboxes until it is resolved.
   */
  NameConflict: "NameConflict",
} as const;

/** A storage size: a positive byte quantity such as `10Gi`, `500M` or `1073741824`. */
const storageSize = (description: string) =>
  z
    .union([
      z.int().min(1),
      z.string().regex(/^\+?(\d*[1-9]\d*(\.\d*)?|\d*\.\d*[1-9]\d*)([eE]\+?\d+|[KMGTPE]i|[kMGTPE])?$/),
    ])
    .meta({ description, "x-kubernetes-int-or-string": true });

export const SandboxStorage = z
  .object({
    workspaceSizeLimit: storageSize(
      "sizeLimit of the emptyDir holding the workspaces (/workspaces). Beyond it the kubelet evicts the sandbox pod.",
    ).default("10Gi"),
    tmpSizeLimit: storageSize("sizeLimit of the emptyDir mounted at /tmp.").default("1Gi"),
    ephemeralStorageRequest: storageSize(
      "The container's requests.ephemeral-storage, for scheduling (at most the limit). template.resources.requests[ephemeral-storage] wins when set.",
    ).default("1Gi"),
  })
  .strict()
  .meta({
    description:
      "Local disk of each sandbox pod. The container's limits.ephemeral-storage is workspaceSizeLimit + tmpSizeLimit + 256Mi for logs, unless template.resources.limits[ephemeral-storage] is set.",
  });

export const SandboxTemplate = z
  .object({
    image: containerImage("Image of the sandbox runtime."),
    imagePullPolicy: z
      .enum(["Always", "IfNotPresent", "Never"])
      .optional()
      .meta({ description: "Image pull policy; the Kubernetes default when unset." }),
    command: stringList("Entrypoint override."),
    args: stringList("Arguments to the entrypoint."),
    port: port("Port of the sandbox runtime's HTTP API (files, exec, /status).", 8080),
    env: envList(),
    resources: ResourceRequirements.optional(),
    storage: SandboxStorage.default({
      workspaceSizeLimit: "10Gi",
      tmpSizeLimit: "1Gi",
      ephemeralStorageRequest: "1Gi",
    }),
    runtimeClassName: objectName(
      "RuntimeClass for stronger isolation, e.g. gvisor or kata: workspaces of one sandbox share its kernel otherwise.",
    ).optional(),
    serviceAccountName: objectName("ServiceAccount of the sandbox pods.").optional(),
    nodeSelector: z
      .record(z.string(), z.string().max(63))
      .optional()
      .meta({ description: "Node labels the sandbox pods must run on." }),
    labels: z
      .record(z.string(), z.string().max(63))
      .optional()
      .meta({ description: "Extra labels for the sandbox pods." }),
  })
  .strict()
  .meta({ description: "What every sandbox pod of the fleet runs." });

export const PressureThresholds = z
  .object({
    cpu: z.number().gt(0).lte(1).default(0.8).meta({
      description: "CPU use (fraction of the limit, in (0,1]) above which a sandbox is under pressure.",
    }),
    memory: z.number().gt(0).lte(1).default(0.8).meta({
      description: "Memory use (fraction of the limit, in (0,1]) above which a sandbox is under pressure.",
    }),
  })
  .strict()
  .meta({ description: "Load above which a sandbox takes no new workspaces and the fleet grows." });

export const FleetNetworkPolicy = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .meta({
        description:
          "Create and own the fleet's NetworkPolicy (the default). false opts out: no policy is made, and any pod " +
          "that the namespace's own policies let through can reach the sandboxes.",
      }),
  })
  .strict()
  .meta({
    description:
      "The fleet's managed NetworkPolicy, on by default: ingress to the sandbox pods (on the template's port) only " +
      "from the agentry operator, the agentry gateway and the AgentRuntimes whose workspace (spec.workspaceRef) is on " +
      "this fleet. Egress is left alone. NetworkPolicies add up: another policy selecting the sandboxes can allow more.",
  });

export const ObjectStoreSpec = z
  .object({
    endpoint: z
      .string()
      .max(1024)
      .regex(/^https?:\/\/[^\s/?#]+\/?$/)
      .meta({
        description:
          "URL of the S3-compatible endpoint (scheme, host and port, no path), e.g. https://s3.eu-west-1.amazonaws.com or http://minio.storage:9000. Only the operator connects to it: sandboxes get short-lived pre-signed URLs from the operator.",
      }),
    bucket: z
      .string()
      .min(3)
      .max(63)
      .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/)
      .meta({ description: "Bucket holding the workspaces. It must exist." }),
    prefix: z
      .string()
      .max(256)
      .regex(/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/)
      .optional()
      .meta({
        description:
          "Key prefix inside the bucket; each workspace is kept under <prefix>/<namespace>.<name>/. Default: none.",
      }),
    region: z
      .string()
      .min(1)
      .max(64)
      .default("us-east-1")
      .meta({ description: "Region used to sign requests (most S3-compatible servers accept any)." }),
    credentialsSecret: LocalObjectReference("Secret").meta({
      description:
        "Secret (same namespace) with the store's credentials in the keys accessKeyId and secretAccessKey. Read only by the operator; never mounted into sandboxes.",
    }),
  })
  .strict()
  .meta({
    description:
      "The S3-compatible object store that keeps this fleet's workspaces (restored on placement, flushed after writes go quiet, on drain, before a sandbox stops and on suspend; removed on Workspace deletion unless spec.retain). Unset: the cluster-wide default store of the agentry install, if any; else workspaces are not durable (Durable=False).",
  });

export const SandboxFleetSpec = z
  .object({
    template: SandboxTemplate,
    minReplicas: z
      .int()
      .min(0)
      .max(1000)
      .default(1)
      .meta({ description: "Fewest sandboxes, whatever the demand." }),
    maxReplicas: z
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .meta({ description: "Most sandboxes, whatever the demand." }),
    replicas: z.int().min(0).max(1000).optional().meta({
      description:
        "Pinned number of sandboxes (set by `kubectl scale` or an HPA through the scale subresource). Unset means autoscale.",
    }),
    warmEmpty: z
      .int()
      .min(0)
      .max(100)
      .default(1)
      .meta({ description: "Sandboxes kept with no workspace, ready for new ones." }),
    maxWorkspacesPerSandbox: z
      .int()
      .min(1)
      .max(1000)
      .default(32)
      .meta({ description: "Most workspaces placed on one sandbox." }),
    pressure: PressureThresholds.default({ cpu: 0.8, memory: 0.8 }),
    ownerlessPool: z.enum(["shared", "dedicated"]).default("shared").meta({
      description:
        "Workspaces without ownerId: shared reuses a sandbox below the pressure thresholds; dedicated gives each its own sandbox.",
    }),
    samplingInterval: duration(
      "How often the operator samples the fleet: every sandbox's load is read and the size it asks for is noted (at least 100ms; a spec change is sampled at once). Events between samples take none.",
      "1s",
    ),
    scaleUpWindow: z.int().min(1).max(100).default(2).meta({
      description:
        "Consecutive samples that must ask for more sandboxes before scaling up: the demand must last (scaleUpWindow - 1) × samplingInterval, 1s by default; 1 scales at the first sample. Samples are kept in memory: a restarted or newly elected operator starts the window afresh (as the HPA does).",
    }),
    scaleDownWindow: z.int().min(1).max(1000).default(2).meta({
      description:
        "Consecutive samples that must ask for fewer sandboxes before scaling down: the lower demand must last (scaleDownWindow - 1) × samplingInterval, 1s by default. A restarted or newly elected operator starts the window afresh.",
    }),
    cooldown: duration("Least time between two scaling actions, counted from status.lastScaleTime.", "1s"),
    idleTTL: duration(
      "How long a surplus empty sandbox is kept before it is removed (counted again by a restarted or newly elected operator).",
      "5m",
    ),
    drainTimeout: duration(
      "How long a draining sandbox waits for its workspaces to leave before removal, counted from the agentry.dev/draining-since annotation written on its pod (so a restart does not start it again).",
      "5m",
    ),
    networkPolicy: FleetNetworkPolicy.default({ enabled: true }),
    objectStore: ObjectStoreSpec.optional(),
  })
  .strict()
  .meta({
    description: "Desired state of the fleet.",
    "x-kubernetes-validations": [
      {
        rule: "self.minReplicas <= self.maxReplicas",
        message: "spec.minReplicas must be less than or equal to spec.maxReplicas",
        fieldPath: ".minReplicas",
      },
      {
        rule: "!has(self.replicas) || (self.replicas >= self.minReplicas && self.replicas <= self.maxReplicas)",
        message:
          "spec.replicas must lie between spec.minReplicas and spec.maxReplicas; widen the bounds or unset replicas",
        fieldPath: ".replicas",
      },
      {
        rule: "self.warmEmpty <= self.maxReplicas",
        message: "spec.warmEmpty cannot exceed spec.maxReplicas",
        fieldPath: ".warmEmpty",
      },
    ],
  });

export const SandboxFleetStatus = z
  .object({
    observedGeneration: observedGeneration(),
    replicas: z.int().min(0).optional().meta({ description: "Sandbox pods that exist (scale subresource)." }),
    readyReplicas: z.int().min(0).optional().meta({ description: "Sandbox pods that are ready." }),
    desiredReplicas: z.int().min(0).optional().meta({ description: "Sandboxes the fleet wants now." }),
    workspaces: z.int().min(0).optional().meta({ description: "Workspaces placed on the fleet." }),
    capacity: z
      .int()
      .min(0)
      .optional()
      .meta({ description: "Workspaces the ready sandboxes can hold (ready × maxWorkspacesPerSandbox)." }),
    selector: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: "Label selector of the sandbox pods (scale subresource)." }),
    deploymentName: objectName("Name of the Deployment of the sandboxes.").optional(),
    lastScaleTime: timestamp("When the fleet last changed size."),
    lastScaleReason: z
      .string()
      .max(1024)
      .optional()
      .meta({ description: "Why the fleet last changed size." }),
    conditions: conditions(),
  })
  .strict()
  .meta({ description: "Observed state of the fleet." });

export const SandboxFleetKind = defineKind({
  kind: "SandboxFleet",
  plural: "sandboxfleets",
  shortNames: ["sbf"],
  description: "SandboxFleet keeps a pool of sandbox pods, scaled from workspace demand and load.",
  spec: SandboxFleetSpec,
  status: SandboxFleetStatus,
  scale: {
    specReplicasPath: ".spec.replicas",
    statusReplicasPath: ".status.replicas",
    labelSelectorPath: ".status.selector",
  },
  printerColumns: [
    { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
    { name: "Desired", type: "integer", jsonPath: ".status.desiredReplicas" },
    { name: "Min", type: "integer", jsonPath: ".spec.minReplicas" },
    { name: "Max", type: "integer", jsonPath: ".spec.maxReplicas" },
    { name: "Workspaces", type: "integer", jsonPath: ".status.workspaces" },
    { name: "Capacity", type: "integer", jsonPath: ".status.capacity" },
    { name: "Pinned", type: "integer", jsonPath: ".spec.replicas", priority: 1 },
    { name: "Last Scale", type: "string", jsonPath: ".status.lastScaleReason", priority: 1 },
  ],
});

export type SandboxFleetSpec = z.output<typeof SandboxFleetSpec>;
export type ObjectStoreSpec = z.output<typeof ObjectStoreSpec>;
export type SandboxFleetStatus = z.output<typeof SandboxFleetStatus>;
