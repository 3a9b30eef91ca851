import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expectVerdict, fakeLookup, fleet, workspace, type Expect, type FakeWorld } from "./fixtures.ts";
import { DEFAULT_POLICY } from "./types.ts";
import { validateWorkspace } from "./workspace.ts";

const tiny = fleet("fleet", { minReplicas: 1, maxReplicas: 1, warmEmpty: 0, maxWorkspacesPerSandbox: 2 });

describe("Workspace rules", () => {
  const cases: {
    name: string;
    world: FakeWorld;
    ws?: ReturnType<typeof workspace>;
    old?: ReturnType<typeof workspace>;
    want: Expect;
  }[] = [
    { name: "fleet exists", world: { fleets: [fleet("fleet")] }, ws: workspace("w"), want: {} },
    {
      name: "idleTimeout of zero",
      world: { fleets: [fleet("fleet")] },
      ws: workspace("w", { idleTimeout: "0s" }),
      want: { deny: /^spec\.idleTimeout: must be longer than 0s/, code: 422 },
    },
    {
      name: "idleTimeout on a fleet without a store warns",
      world: { fleets: [fleet("fleet")] },
      ws: workspace("w", { idleTimeout: "10m" }),
      want: {
        warn: /names no object store: idleTimeout takes effect only if the agentry install has a default store/,
      },
    },
    {
      name: "idleTimeout on a fleet with a store",
      world: {
        fleets: [
          fleet("fleet", {
            objectStore: {
              endpoint: "https://s3.example",
              bucket: "workspaces",
              credentialsSecret: { name: "s" },
            },
          }),
        ],
      },
      ws: workspace("w", { idleTimeout: "10m" }),
      want: {},
    },
    {
      name: "an expireAt already passed warns",
      world: { fleets: [fleet("fleet")] },
      ws: workspace("w", { expireAt: "2000-01-01T00:00:00Z" }),
      want: { warn: /spec\.expireAt: 2000-01-01T00:00:00Z has passed: the workspace is deleted at once/ },
    },
    {
      name: "missing fleet",
      world: {},
      ws: workspace("w"),
      want: {
        deny: /^spec\.fleetRef\.name: SandboxFleet "fleet" does not exist in namespace "team-a"; create the fleet first/,
        code: 422,
      },
    },
    {
      name: "update does not recheck an unchanged fleetRef",
      world: {},
      ws: workspace("w", { suspended: true }),
      old: workspace("w"),
      want: {},
    },
    {
      name: "full fleet warns",
      world: { fleets: [tiny], workspaces: [workspace("a"), workspace("b")] },
      ws: workspace("w"),
      want: { warn: /SandboxFleet "fleet" is full \(2 workspaces, capacity 2\)/ },
    },
    {
      name: "workspaces being deleted do not count",
      world: {
        fleets: [tiny],
        workspaces: [workspace("a"), workspace("b", {}, { deletionTimestamp: "2026-01-01T00:00:00Z" })],
      },
      ws: workspace("w"),
      want: {},
    },
    {
      name: "git credentials Secret exists",
      world: { fleets: [fleet("fleet")], secrets: { git: ["token"] } },
      ws: workspace("w", {
        source: { git: { url: "https://g.example/r.git", credentialsSecretRef: { name: "git" } } },
      }),
      want: {},
    },
    {
      name: "git credentials Secret missing",
      world: { fleets: [fleet("fleet")] },
      ws: workspace("w", {
        source: { git: { url: "https://g.example/r.git", credentialsSecretRef: { name: "git" } } },
      }),
      want: {
        deny: /spec\.source\.git\.credentialsSecretRef\.name: Secret "git" does not exist in namespace "team-a"; create it first/,
      },
    },
    { name: "delete is always allowed", world: {}, old: workspace("w"), want: {} },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const v = await validateWorkspace(c.ws, c.old, fakeLookup(c.world), DEFAULT_POLICY);
      assert.equal(expectVerdict(v, c.want), undefined);
    });
});
