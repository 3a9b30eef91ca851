// What the Pipeline controller reads of and does to the runs (Jobs) themselves: a run whose
// image step has outlived its timeoutSeconds is stopped (the reason as an annotation and an
// activeDeadlineSeconds already passed), and a failed run's reason is taken from its newest
// failed pod. Both read the Job's pods from the apiserver (the operator does not cache pods).
import type { Pipeline } from "../../../api/v1alpha1/index.ts";
import type { ChildWriter } from "../../../lib/kube/children.ts";
import type { KubeApi, KubeObject } from "../../../lib/kube/client.ts";
import type { Recorder } from "../../../lib/kube/events.ts";
import { errorMessage, type Logger } from "../../../lib/log.ts";
import { runOf, type JobView } from "./status.ts";
import {
  ANNOTATION_STEP_TIMEOUT,
  checkStepTimeouts,
  deadlineNow,
  timedSteps,
  type StepPodView,
} from "./timeouts.ts";

export interface RunDeps {
  client: KubeApi;
  writer: ChildWriter;
  recorder: Recorder;
  log: Logger;
  now: () => Date;
}

interface PodView {
  metadata: { creationTimestamp?: string };
  status?: {
    phase?: string;
    message?: string;
    reason?: string;
    containerStatuses?: { state?: { terminated?: { exitCode?: number; message?: string } } }[];
  };
}

export class PipelineRuns {
  private readonly deps: RunDeps;

  constructor(deps: RunDeps) {
    this.deps = deps;
  }

  /**
   * Stops runs whose image step has run past its timeoutSeconds (see timeouts.ts):
   * the Job gets the reason as an annotation and an activeDeadlineSeconds already passed.
   * Returns when to look again while a run with timed steps is still going.
   */
  async enforceStepTimeouts(pl: Pipeline, jobs: KubeObject[]): Promise<number | undefined> {
    const limits = timedSteps(pl.spec.steps);
    if (limits.size === 0) return undefined;
    let next: number | undefined;
    for (const job of jobs) {
      const view = job as unknown as JobView & { spec?: { activeDeadlineSeconds?: number } };
      if (runOf(view).result !== "Running" || job.metadata.annotations?.[ANNOTATION_STEP_TIMEOUT]) continue;
      const name = job.metadata.name!;
      let pods: StepPodView[];
      try {
        pods = await this.jobPods<StepPodView>(pl.metadata.namespace, name);
      } catch (err) {
        this.deps.log.debug("could not read the pods of a running Job", {
          job: name,
          error: errorMessage(err),
        });
        next = Math.min(next ?? Infinity, 5000);
        continue;
      }
      const now = this.deps.now();
      const verdict = checkStepTimeouts(limits, pods, now);
      next = Math.min(next ?? Infinity, verdict.nextCheckMs);
      const overdue = verdict.overdue;
      if (!overdue) continue;
      await this.deps.writer.write("Job", "patch", () =>
        this.deps.client.mergePatch(
          { apiVersion: "batch/v1", kind: "Job", metadata: { namespace: pl.metadata.namespace, name } },
          {
            metadata: { annotations: { [ANNOTATION_STEP_TIMEOUT]: overdue.message } },
            spec: {
              activeDeadlineSeconds: deadlineNow(
                view.status?.startTime,
                view.spec?.activeDeadlineSeconds,
                now,
              ),
            },
          },
        ),
      );
      this.deps.recorder.event(pl, "Warning", "StepTimedOut", `Job ${name}: ${overdue.message}`);
    }
    return next;
  }

  /** The failure message of each failed Job's newest failed pod (one list per newly failed Job). */
  async podMessages(
    namespace: string,
    jobNames: string[],
    jobs: KubeObject[],
  ): Promise<Record<string, string>> {
    const messages: Record<string, string> = {};
    for (const job of jobNames) {
      // A run stopped for a step's time limit says so; its pods only say they were killed.
      const timedOut = jobs.find((j) => j.metadata.name === job)?.metadata.annotations?.[
        ANNOTATION_STEP_TIMEOUT
      ];
      if (timedOut) {
        messages[job] = timedOut;
        continue;
      }
      try {
        const pods = await this.jobPods<PodView>(namespace, job);
        const failed = pods
          .filter((p) => p.status?.phase === "Failed")
          .sort((a, b) =>
            (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
          );
        const status = failed[0]?.status;
        const terminated = status?.containerStatuses?.find((c) => c.state?.terminated?.exitCode)?.state
          ?.terminated;
        const message = status?.message ?? terminated?.message ?? status?.reason;
        if (message) messages[job] = message;
      } catch (err) {
        this.deps.log.debug("could not read the pods of a failed Job", { job, error: errorMessage(err) });
      }
    }
    return messages;
  }
  /** The pods a Job made (one list call). */
  private async jobPods<P>(namespace: string | undefined, job: string): Promise<P[]> {
    const list = await this.deps.client.list<KubeObject>("v1", "Pod", namespace, {
      labelSelector: `batch.kubernetes.io/job-name=${job}`,
    });
    return list.items as unknown as P[];
  }
}
