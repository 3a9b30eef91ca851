import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateAgentRuntime } from "./agentruntime.ts";
import { agent, expectVerdict, fakeLookup, workspace, type Expect, type FakeWorld } from "./fixtures.ts";
import { DEFAULT_POLICY } from "./types.ts";

const secretEnv = (name: string, key: string) => ({
  env: [{ name: "K", valueFrom: { secretKeyRef: { name, key } } }],
});

describe("AgentRuntime rules", () => {
  const cases: {
    name: string;
    world?: FakeWorld;
    obj?: ReturnType<typeof agent>;
    old?: ReturnType<typeof agent>;
    want: Expect;
  }[] = [
    { name: "a good agent", obj: agent("a"), want: {} },
    {
      name: "latest image",
      obj: agent("a", { image: "ghcr.io/acme/agent:latest" }),
      want: { deny: /^spec\.image: image .* uses the tag latest/, code: 403 },
    },
    {
      name: "unchanged latest image is not rechecked",
      obj: agent("a", { image: "x/y:latest", port: 9000 }),
      old: agent("a", { image: "x/y:latest" }),
      want: {},
    },
    {
      name: "workspace exists",
      world: { workspaces: [workspace("ws")] },
      obj: agent("a", { workspaceRef: { name: "ws" } }),
      want: {},
    },
    {
      name: "workspace missing",
      obj: agent("a", { workspaceRef: { name: "ws" } }),
      want: {
        deny: /spec\.workspaceRef\.name: Workspace "ws" does not exist in namespace "team-a"; create the workspace first/,
      },
    },
    {
      name: "suspended workspace warns",
      world: { workspaces: [workspace("ws", { suspended: true })] },
      obj: agent("a", { workspaceRef: { name: "ws" } }),
      want: { warn: /Workspace "ws" is suspended/ },
    },
    {
      name: "env secret and key exist",
      world: { secrets: { s: ["k"] } },
      obj: agent("a", secretEnv("s", "k")),
      want: {},
    },
    {
      name: "env secret missing",
      obj: agent("a", secretEnv("s", "k")),
      want: { deny: /spec\.env\[0\]\.valueFrom\.secretKeyRef\.name: Secret "s" does not exist/ },
    },
    {
      name: "env secret key missing",
      world: { secrets: { s: ["other"] } },
      obj: agent("a", secretEnv("s", "k")),
      want: {
        deny: /spec\.env\[0\]\.valueFrom\.secretKeyRef\.key: Secret "s" has no key "k" \(it has "other"\)/,
      },
    },
    {
      name: "optional env secret is not checked",
      obj: agent("a", {
        env: [{ name: "K", valueFrom: { secretKeyRef: { name: "s", key: "k", optional: true } } }],
      }),
      want: {},
    },
    {
      name: "envFrom secret missing",
      obj: agent("a", { envFrom: [{ secretRef: { name: "bulk" } }] }),
      want: { deny: /spec\.envFrom\[0\]\.secretRef\.name: Secret "bulk"/ },
    },
    {
      name: "model credentials key defaults to api-key",
      world: { secrets: { openai: ["token"] } },
      obj: agent("a", {
        model: { provider: "openai", model: "gpt", credentialsSecretRef: { name: "openai" } },
      }),
      want: { deny: /spec\.model\.credentialsSecretRef\.key: Secret "openai" has no key "api-key"/ },
    },
    {
      name: "model credentials present",
      world: { secrets: { openai: ["api-key"] } },
      obj: agent("a", {
        model: { provider: "openai", model: "gpt", credentialsSecretRef: { name: "openai" } },
        networkPolicy: { egress: [{ cidr: "0.0.0.0/0", ports: [443] }] },
      }),
      want: {},
    },
    {
      name: "a hosted provider behind the default NetworkPolicy with no egress warns",
      world: { secrets: { openai: ["api-key"] } },
      obj: agent("a", {
        model: { provider: "openai", model: "gpt", credentialsSecretRef: { name: "openai" } },
      }),
      want: { warn: /^spec\.networkPolicy\.egress: empty; .* not provider openai: list its API/ },
    },
    {
      name: "a provider with the NetworkPolicy opted out does not warn",
      world: { secrets: { openai: ["api-key"] } },
      obj: agent("a", {
        model: { provider: "openai", model: "gpt", credentialsSecretRef: { name: "openai" } },
        networkPolicy: { enabled: false },
      }),
      want: {},
    },
    {
      name: "keyed provider without credentials warns",
      obj: agent("a", { model: { provider: "anthropic", model: "claude" } }),
      want: { warn: /spec\.model\.credentialsSecretRef: not set; provider anthropic needs an API key/ },
    },
    {
      name: "echo provider needs no credentials",
      obj: agent("a", { model: { provider: "echo", model: "e" } }),
      want: {},
    },
    {
      name: "no limits warns",
      obj: agent("a", { resources: {} }),
      want: { warn: /spec\.resources\.limits: not set/ },
    },
    {
      name: "a Secret already referenced before is not rechecked",
      obj: agent("a", { ...secretEnv("gone", "k"), port: 9000 }),
      old: agent("a", secretEnv("gone", "k")),
      want: {},
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const v = await validateAgentRuntime(c.obj, c.old, fakeLookup(c.world), DEFAULT_POLICY);
      assert.equal(expectVerdict(v, c.want), undefined);
    });

  it("takes Secret references as given when Secrets are not checked (--check-secret-refs=false)", async () => {
    const lookup = { ...fakeLookup(), secretKeys: () => Promise.resolve(null) };
    const v = await validateAgentRuntime(
      agent("a", secretEnv("unseen", "k")),
      undefined,
      lookup,
      DEFAULT_POLICY,
    );
    assert.equal(expectVerdict(v, {}), undefined);
  });
});
