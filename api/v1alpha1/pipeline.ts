// Pipeline: agent work on a schedule (a CronJob) or once (a Job), with the manifest of
// steps kept in a ConfigMap mounted into the job pod.
import { z } from "zod";
import {
  conditions,
  containerImage,
  dnsLabel,
  envList,
  LocalObjectReference,
  objectName,
  observedGeneration,
  ResourceRequirements,
  stringList,
  timestamp,
} from "./common.ts";
import { defineKind } from "./kind.ts";

/** Schedules that mean "run once now" instead of a cron expression. */
export const ONCE_SCHEDULES = ["", "@once"] as const;

/**
 * A coarse syntax check that CEL can afford: five fields of cron characters, a macro, or
 * empty/@once. The webhook parses the expression fully, with its time zone.
 */
export const SCHEDULE_PATTERN =
  "^(|@once|@yearly|@annually|@monthly|@weekly|@daily|@midnight|@hourly|@every [0-9]+(ms|s|m|h)([0-9]+(ms|s|m|h))*|[0-9A-Za-z*?/,-]+( +[0-9A-Za-z*?/,-]+){4})$";

/** Reasons of the Ready condition of a Pipeline. */
export const PipelineReason = {
  /** Ready=True: the CronJob is in place and the last finished run succeeded (or none ran yet). */
  Scheduled: "Scheduled",
  /** Ready=True: the one-shot run succeeded. */
  Succeeded: "Succeeded",
  /** Ready=False (transient): the CronJob or the one-shot Job is being created. */
  Creating: "Creating",
  /** Ready=False (transient): a run is in progress. */
  Running: "Running",
  /** Ready=False: the latest finished run failed; the message says why. */
  RunFailed: "RunFailed",
  /** Ready=True: spec.suspended is true, as the spec asks (kstatus: Current). */
  Suspended: "Suspended",
  /** Ready=False: a step names an AgentRuntime that does not exist. */
  AgentNotFound: "AgentNotFound",
  /** Ready=False: the operator could not create or update a child object. */
  ReconcileError: "ReconcileError",
  /**
   * Ready=False: the manifest ConfigMap, the CronJob or a Job of the Pipeline has the name of
   * an existing object the Pipeline does not control; the message names it. agentry leaves
   * that object alone, and deleting the Pipeline does too. No run starts until it is resolved.
   */
  NameConflict: "NameConflict",
} as const;

export const PipelineStep = z
  .object({
    name: dnsLabel("Step name, unique within the pipeline."),
    image: containerImage(
      "Image that runs this step in the run's own job pod (a fresh sandbox per run).",
    ).optional(),
    agentRef: LocalObjectReference("AgentRuntime").optional().meta({
      description:
        "Persistent AgentRuntime that runs this step over its HTTP API; the job pod only dispatches.",
    }),
    command: stringList("Command to run (image steps) or to send to the agent (agentRef steps)."),
    args: stringList("Arguments of the command."),
    input: z
      .string()
      .max(65536)
      .optional()
      .meta({ description: "Input of the step, e.g. the prompt or task text given to the agent." }),
    env: envList(),
    timeoutSeconds: z.int().min(1).max(86400).optional().meta({
      description:
        "Time limit of this step; the run fails when it is exceeded. Image steps: the operator stops the run (the Job's activeDeadlineSeconds, reason DeadlineExceeded, the step named in lastFailure) within about 10 s of the limit. agentRef steps: the dispatcher gives up at the limit.",
    }),
  })
  .strict()
  .meta({
    description: "One step of the pipeline: either an image or an AgentRuntime reference.",
    "x-kubernetes-validations": [
      {
        rule: "has(self.image) != has(self.agentRef)",
        message:
          "each step needs exactly one of image (run in the job pod) or agentRef (run on an AgentRuntime)",
      },
    ],
  });

export const PipelineSpec = z
  .object({
    schedule: z.string().max(128).regex(new RegExp(SCHEDULE_PATTERN)).default("").meta({
      description:
        'Cron schedule (5 fields, e.g. "0 2 * * *", or a macro such as @daily) for a CronJob; "" or "@once" runs once as a Job.',
    }),
    timeZone: z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9_+\-/]+$/)
      .optional()
      .meta({
        description: "IANA time zone of the schedule, e.g. Europe/Paris; UTC of the controller when unset.",
      }),
    suspended: z.boolean().default(false).meta({ description: "Pause scheduling; running runs finish." }),
    concurrencyPolicy: z
      .enum(["Allow", "Forbid", "Replace"])
      .default("Forbid")
      .meta({ description: "What to do when a run is due while the previous one still runs." }),
    startingDeadlineSeconds: z
      .int()
      .min(1)
      .optional()
      .meta({ description: "A run that could not start within this many seconds of its time is skipped." }),
    successfulRunsHistoryLimit: z
      .int()
      .min(0)
      .max(100)
      .default(3)
      .meta({ description: "How many finished successful runs (Jobs) to keep." }),
    failedRunsHistoryLimit: z
      .int()
      .min(0)
      .max(100)
      .default(3)
      .meta({ description: "How many failed runs (Jobs) to keep." }),
    backoffLimit: z
      .int()
      .min(0)
      .max(100)
      .default(1)
      .meta({ description: "Retries of a failed run before it fails." }),
    activeDeadlineSeconds: z
      .int()
      .min(1)
      .optional()
      .meta({ description: "Time limit of a whole run; the run fails when it is exceeded." }),
    serviceAccountName: objectName(
      "ServiceAccount of the job pod; the namespace default when unset.",
    ).optional(),
    resources: ResourceRequirements.optional(),
    podMetadata: z
      .object({
        labels: z
          .record(z.string(), z.string().max(63))
          .optional()
          .meta({ description: "Labels added to every job pod (e.g. for a service mesh)." }),
        annotations: z
          .record(z.string(), z.string().max(65536))
          .optional()
          .meta({ description: "Annotations added to every job pod (e.g. for a service mesh)." }),
      })
      .strict()
      .optional()
      .meta({
        description: "Extra labels and annotations for the job pods; agentry's own labels win on a clash.",
      }),
    steps: z
      .array(PipelineStep)
      .min(1)
      .max(50)
      .meta({
        description: "The pipeline manifest: steps run in order.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
  })
  .strict()
  .meta({
    description: "Desired state of the pipeline.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.timeZone) || !(self.schedule in ['', '@once'])",
        message: "timeZone only applies to a cron schedule; remove it or set spec.schedule",
        fieldPath: ".timeZone",
      },
    ],
  });

export const PipelineRun = z
  .object({
    jobName: objectName("Name of the Job of this run."),
    startTime: timestamp("When the run started."),
    completionTime: timestamp("When the run finished."),
    result: z.enum(["Running", "Succeeded", "Failed"]).meta({ description: "Outcome of the run." }),
    reason: z
      .string()
      .max(256)
      .optional()
      .meta({ description: "Why the run failed (Job condition reason)." }),
    message: z.string().max(4096).optional().meta({ description: "Details of a failure." }),
  })
  .strict()
  .meta({ description: "One run of the pipeline." });

export const PipelineStatus = z
  .object({
    observedGeneration: observedGeneration(),
    phase: z
      .enum(["Pending", "Scheduled", "Running", "Succeeded", "Failed", "Suspended"])
      .optional()
      .meta({ description: "Summary of the pipeline's state." }),
    childKind: z
      .enum(["CronJob", "Job"])
      .optional()
      .meta({ description: "Kind of the child: CronJob or Job." }),
    childName: objectName("Name of the CronJob or Job.").optional(),
    manifestConfigMap: objectName("Name of the ConfigMap holding the pipeline manifest.").optional(),
    active: z.int().min(0).optional().meta({ description: "Number of runs in progress." }),
    lastScheduleTime: timestamp("When a run was last started."),
    lastSuccessfulTime: timestamp("When a run last succeeded."),
    lastFailure: PipelineRun.optional().meta({ description: "The latest failed run, with its reason." }),
    history: z.array(PipelineRun).max(20).optional().meta({ description: "Recent runs, newest first." }),
    lastRunRequest: z
      .string()
      .max(253)
      .optional()
      .meta({ description: "The last run-now request id that was honoured." }),
    conditions: conditions(),
  })
  .strict()
  .meta({ description: "Observed state of the pipeline." });

export const PipelineKind = defineKind({
  kind: "Pipeline",
  plural: "pipelines",
  shortNames: ["pl"],
  description: "Pipeline runs agent steps on a cron schedule (a CronJob) or once (a Job).",
  spec: PipelineSpec,
  status: PipelineStatus,
  maxNameLength: 52,
  nameLimitReason: "CronJob names are limited to 52 characters",
  printerColumns: [
    { name: "Schedule", type: "string", jsonPath: ".spec.schedule" },
    { name: "Kind", type: "string", jsonPath: ".status.childKind" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Last Run", type: "date", jsonPath: ".status.lastScheduleTime" },
    { name: "Last Failure", type: "string", jsonPath: ".status.lastFailure.reason" },
    { name: "Active", type: "integer", jsonPath: ".status.active", priority: 1 },
  ],
});

/** Annotation on a Pipeline that asks for a run now; the value is the request id. */
/** Label of a Pipeline's children (ConfigMap, CronJob or Job, the Jobs' pods): the Pipeline's name. */
export const LABEL_PIPELINE = "agentry.dev/pipeline";
/** The Pipeline's uid on every child and on the Jobs a CronJob makes from its template. */
export const ANNOTATION_PIPELINE_ID = "agentry.dev/pipeline-id";
export const RUN_NOW_ANNOTATION = "agentry.dev/run-now";

export type PipelineSpec = z.output<typeof PipelineSpec>;
export type PipelineStatus = z.output<typeof PipelineStatus>;
export type PipelineStep = z.output<typeof PipelineStep>;
export type PipelineRun = z.output<typeof PipelineRun>;
