import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expectVerdict, fakeLookup, fleet, workspace, type Expect, type FakeWorld } from "./fixtures.ts";
import { validateSandboxFleet } from "./sandboxfleet.ts";
import { ALLOW_DELETE_WITH_WORKSPACES, DEFAULT_POLICY, type Policy } from "./types.ts";

const three = { workspaces: [workspace("a"), workspace("b"), workspace("c")] };
const sized = (max: number, per: number, metadata = {}) =>
  fleet("fleet", { minReplicas: 1, maxReplicas: max, warmEmpty: 0, maxWorkspacesPerSandbox: per }, metadata);

describe("SandboxFleet rules", () => {
  const cases: {
    name: string;
    world?: FakeWorld;
    obj?: ReturnType<typeof fleet>;
    old?: ReturnType<typeof fleet>;
    policy?: Partial<Policy>;
    want: Expect;
  }[] = [
    { name: "a good fleet", obj: fleet("fleet"), want: {} },
    {
      name: "image from a registry not allowed",
      obj: fleet("fleet"),
      policy: { allowedRegistries: ["registry.internal"] },
      want: {
        deny: /^spec\.template\.image: image "ghcr\.io\/acme\/sandbox:1\.0" comes from ghcr\.io/,
        code: 403,
      },
    },
    {
      name: "latest image",
      obj: fleet("fleet", {
        template: {
          image: "ghcr.io/acme/sandbox:latest",
          resources: { limits: { cpu: "1", memory: "1Gi" } },
        },
      }),
      want: { deny: /spec\.template\.image: .*latest/ },
    },
    {
      name: "no limits warns",
      obj: fleet("fleet", { template: { image: "ghcr.io/acme/sandbox:1" } }),
      want: { warn: /spec\.template\.resources\.limits: cpu and memory limits are not both set/ },
    },
    {
      name: "very large maxReplicas warns",
      obj: fleet("fleet", { maxReplicas: 500 }),
      want: { warn: /spec\.maxReplicas: 500 sandboxes is a very large fleet/ },
    },
    {
      name: "shrinking but still holding its workspaces",
      world: three,
      obj: sized(1, 3),
      old: sized(2, 3),
      want: {},
    },
    {
      name: "shrinking below its workspaces",
      world: three,
      obj: sized(1, 2),
      old: sized(2, 2),
      want: {
        deny: /spec\.maxReplicas: maxReplicas × maxWorkspacesPerSandbox = 1 × 2 = 2 cannot hold the 3 Workspaces/,
        code: 409,
      },
    },
    {
      name: "growing an over-full fleet is allowed",
      world: three,
      obj: sized(1, 2),
      old: sized(1, 1),
      want: {},
    },
    {
      name: "deleting an unused fleet",
      world: { workspaces: [workspace("x", { fleetRef: { name: "other" } })] },
      old: fleet("fleet"),
      want: {},
    },
    {
      name: "deleting a fleet in use",
      world: three,
      old: fleet("fleet"),
      want: {
        deny: /SandboxFleet "fleet" still hosts 3 Workspace\(s\) \(a, b, c\); delete them first, or annotate the fleet with agentry\.dev\/allow-delete-with-workspaces="true"/,
        code: 409,
      },
    },
    {
      name: "deleting a fleet in use with the annotation",
      world: three,
      old: fleet("fleet", {}, { annotations: { [ALLOW_DELETE_WITH_WORKSPACES]: "true" } }),
      want: { warn: /3 workspaces \(a, b, c\) lose their sandboxes/ },
    },
    {
      name: "secret of the template env missing",
      obj: fleet("fleet", {
        template: {
          image: "ghcr.io/acme/sandbox:1",
          resources: { limits: { cpu: "1", memory: "1Gi" } },
          env: [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "tok", key: "t" } } }],
        },
      }),
      want: { deny: /spec\.template\.env\[0\]\.valueFrom\.secretKeyRef\.name: Secret "tok" does not exist/ },
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const v = await validateSandboxFleet(c.obj, c.old, fakeLookup(c.world), {
        ...DEFAULT_POLICY,
        ...c.policy,
      });
      assert.equal(expectVerdict(v, c.want), undefined);
    });
});
