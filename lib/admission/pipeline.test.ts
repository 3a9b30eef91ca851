import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agent, expectVerdict, fakeLookup, pipeline, type Expect, type FakeWorld } from "./fixtures.ts";
import { validatePipeline } from "./pipeline.ts";
import { DEFAULT_POLICY } from "./types.ts";

const agentStep = (name: string) => ({ steps: [{ name: "ask", agentRef: { name } }] });

describe("Pipeline rules", () => {
  const cases: {
    name: string;
    world?: FakeWorld;
    obj?: ReturnType<typeof pipeline>;
    old?: ReturnType<typeof pipeline>;
    want: Expect;
  }[] = [
    { name: "a run-once pipeline", obj: pipeline("p"), want: {} },
    {
      name: "a cron pipeline in a time zone",
      obj: pipeline("p", { schedule: "0 2 * * *", timeZone: "Europe/Paris" }),
      want: {},
    },
    {
      name: "a bad cron expression",
      obj: pipeline("p", { schedule: "0 24 * * *" }),
      want: { deny: /^spec\.schedule: "0 24 \* \* \*" is not a valid cron expression/ },
    },
    {
      name: "an unknown time zone",
      obj: pipeline("p", { schedule: "0 2 * * *", timeZone: "Europe/Atlantis" }),
      want: { deny: /spec\.timeZone: "Europe\/Atlantis" is not an IANA time zone/ },
    },
    {
      name: "step agent exists",
      world: { agents: [agent("helper")] },
      obj: pipeline("p", agentStep("helper")),
      want: {},
    },
    {
      name: "step agent missing",
      obj: pipeline("p", agentStep("helper")),
      want: {
        deny: /spec\.steps\[0\]\.agentRef\.name: AgentRuntime "helper" does not exist in namespace "team-a"; create the agent first/,
      },
    },
    {
      name: "suspended step agent warns",
      world: { agents: [agent("helper", { suspended: true })] },
      obj: pipeline("p", agentStep("helper")),
      want: { warn: /AgentRuntime "helper" is suspended/ },
    },
    {
      name: "step image latest",
      obj: pipeline("p", {
        steps: [
          { name: "a", image: "ghcr.io/x/y:1" },
          { name: "b", image: "busybox" },
        ],
      }),
      want: { deny: /spec\.steps\[1\]\.image: image "busybox" has no tag or digest/ },
    },
    {
      name: "step env secret missing",
      obj: pipeline("p", {
        steps: [
          {
            name: "a",
            image: "ghcr.io/x/y:1",
            env: [{ name: "T", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }],
          },
        ],
      }),
      want: { deny: /spec\.steps\[0\]\.env\[0\]\.valueFrom\.secretKeyRef\.name: Secret "s" does not exist/ },
    },
    {
      name: "no activeDeadlineSeconds warns",
      obj: { ...pipeline("p"), spec: { ...pipeline("p").spec, activeDeadlineSeconds: undefined } },
      want: { warn: /spec\.activeDeadlineSeconds: not set; a stuck run is never stopped/ },
    },
    {
      name: "concurrencyPolicy Allow on a cron pipeline warns",
      obj: pipeline("p", { schedule: "@hourly", concurrencyPolicy: "Allow" }),
      want: { warn: /spec\.concurrencyPolicy: Allow lets runs pile up/ },
    },
    {
      name: "several problems are all reported",
      obj: pipeline("p", { schedule: "0 2 * * *", timeZone: "Nope/Nope", ...agentStep("missing") }),
      want: { deny: /spec\.timeZone: .*; spec\.steps\[0\]\.agentRef\.name: / },
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const v = await validatePipeline(c.obj, c.old, fakeLookup(c.world), DEFAULT_POLICY);
      assert.equal(expectVerdict(v, c.want), undefined);
    });
});
