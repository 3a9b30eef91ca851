// Fixture builders for the Pipeline status tests: a Pipeline through its zod schema (so it
// carries the stored defaults), Jobs finished at a given minute, an observation.
import type { Pipeline, PipelineStatus } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import type { JobView, PipelineObservation } from "./status.ts";

export const now = new Date("2026-11-23T12:00:00Z");

export function pipeline(spec: Record<string, unknown> = {}, status?: PipelineStatus): Pipeline {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Pipeline",
    metadata: { name: "p", namespace: "ns", uid: "u", generation: 2 },
    spec: specSchemas.Pipeline.parse({ steps: [{ name: "a", image: "x:1" }], ...spec }),
    ...(status ? { status } : {}),
  };
}

export const at = (minute: number) => `2026-11-23T10:${String(minute).padStart(2, "0")}:00Z`;

export function job(
  name: string,
  minute: number,
  result: "Running" | "Complete" | "Failed",
  reason?: string,
): JobView {
  const conditions =
    result === "Running"
      ? []
      : [
          {
            type: result,
            status: "True",
            ...(reason ? { reason, message: "Job has reached the specified backoff limit" } : {}),
            lastTransitionTime: at(minute + 1),
          },
        ];
  return {
    metadata: { name, creationTimestamp: at(minute) },
    status: {
      startTime: at(minute),
      ...(result === "Complete" ? { completionTime: at(minute + 1) } : {}),
      conditions,
    },
  };
}

export const observe = (o: Partial<PipelineObservation>): PipelineObservation => ({
  mode: "Job",
  childName: "p-abc",
  childExists: true,
  manifestConfigMap: "p-manifest",
  jobs: [],
  ...o,
});

export const ready = (s: PipelineStatus) => s.conditions?.find((c) => c.type === "Ready");
