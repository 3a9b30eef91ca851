// Pipeline admission: the cron schedule with its time zone, the AgentRuntimes its steps
// name, image policy for image steps, Secrets in step env; warnings for runs without a
// time limit and for piling-up runs.
import type { Pipeline, PipelineStep } from "../../api/v1alpha1/index.ts";
import { checkImage } from "./images.ts";
import { checkSecretRefs, envSecretRefs, missing, newRefs, type SecretRef } from "./refs.ts";
import { checkSchedule } from "./schedule.ts";
import { Findings, type Rule } from "./types.ts";

const secretRefs = (pl: Pipeline): SecretRef[] =>
  pl.spec.steps.flatMap((s: PipelineStep, i) => envSecretRefs(`spec.steps[${i}]`, s.env));

export const validatePipeline: Rule<Pipeline> = async (pl, old, lookup, policy) => {
  const f = new Findings();
  if (!pl) return f.verdict();
  const namespace = pl.metadata.namespace ?? "";
  const spec = pl.spec;
  if (!old || old.spec.schedule !== spec.schedule || old.spec.timeZone !== spec.timeZone)
    checkSchedule(f, spec.schedule, spec.timeZone);

  const oldImages = new Set(old?.spec.steps.map((s) => s.image));
  const oldAgents = new Set(old?.spec.steps.map((s) => s.agentRef?.name));
  for (const [i, step] of spec.steps.entries()) {
    if (step.image !== undefined && !oldImages.has(step.image))
      checkImage(f, `spec.steps[${i}].image`, step.image, policy);
    const agentName = step.agentRef?.name;
    if (agentName !== undefined && !oldAgents.has(agentName)) {
      const agent = await lookup.agentRuntime(namespace, agentName);
      if (!agent)
        missing(
          f,
          `spec.steps[${i}].agentRef.name`,
          "AgentRuntime",
          agentName,
          namespace,
          `create the agent first or fix the name (kubectl get agentruntimes -n ${namespace})`,
        );
      else if (agent.spec.suspended)
        f.warn(
          `spec.steps[${i}].agentRef.name`,
          `AgentRuntime "${agentName}" is suspended; this step fails until it is resumed`,
        );
    }
  }
  await checkSecretRefs(f, namespace, newRefs(secretRefs(pl), old && secretRefs(old)), lookup);

  if (spec.activeDeadlineSeconds === undefined)
    f.warn(
      "spec.activeDeadlineSeconds",
      "not set; a stuck run is never stopped; set a time limit such as 3600",
    );
  const cron = spec.schedule !== "" && spec.schedule !== "@once";
  if (cron && spec.concurrencyPolicy === "Allow")
    f.warn(
      "spec.concurrencyPolicy",
      "Allow lets runs pile up when one takes longer than the schedule interval",
    );
  return f.verdict();
};
