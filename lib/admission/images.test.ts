import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkImage, parseImage, registryAllowed } from "./images.ts";
import { DEFAULT_POLICY, Findings } from "./types.ts";

describe("parseImage", () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ["nginx", "docker.io", "library/nginx", undefined, undefined],
    ["nginx:1.27", "docker.io", "library/nginx", "1.27", undefined],
    ["acme/agent:2", "docker.io", "acme/agent", "2", undefined],
    ["ghcr.io/acme/agent:1.0", "ghcr.io", "acme/agent", "1.0", undefined],
    ["localhost:5000/agent", "localhost:5000", "agent", undefined, undefined],
    ["registry.example:5000/a/b:3@sha256:abc", "registry.example:5000", "a/b", "3", "sha256:abc"],
    ["ghcr.io/acme/agent@sha256:abc", "ghcr.io", "acme/agent", undefined, "sha256:abc"],
    ["index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", undefined],
  ];
  for (const [image, registry, repository, tag, digest] of cases)
    it(image, () => assert.deepEqual(parseImage(image), { registry, repository, tag, digest }));
});

describe("registryAllowed", () => {
  const cases: [string, string[], boolean][] = [
    ["nginx:1", [], true],
    ["nginx:1", ["docker.io"], true],
    ["nginx:1", ["ghcr.io"], false],
    ["ghcr.io/acme/agent:1", ["ghcr.io/acme"], true],
    ["ghcr.io/acme/agent:1", ["ghcr.io/acme/"], true],
    ["ghcr.io/acmecorp/agent:1", ["ghcr.io/acme"], false],
    ["GHCR.io/acme/agent:1", ["ghcr.io"], true],
    ["evil.io/ghcr.io/x:1", ["ghcr.io"], false],
  ];
  for (const [image, allowed, want] of cases)
    it(`${image} with [${allowed.join(",")}] → ${want}`, () =>
      assert.equal(registryAllowed(parseImage(image), allowed), want));
});

describe("checkImage", () => {
  const cases: { image: string; allowLatest?: boolean; registries?: string[]; deny?: RegExp }[] = [
    { image: "ghcr.io/acme/agent:1.0" },
    { image: "ghcr.io/acme/agent@sha256:abc" },
    { image: "ghcr.io/acme/agent:latest", deny: /uses the tag latest.*pin a version tag or a digest/ },
    { image: "ghcr.io/acme/agent", deny: /has no tag or digest, which means latest/ },
    { image: "ghcr.io/acme/agent:latest", allowLatest: true },
    { image: "ghcr.io/acme/agent", allowLatest: true },
    {
      image: "docker.io/x/y:1",
      registries: ["ghcr.io"],
      deny: /comes from docker.io.*use an image from ghcr.io/,
    },
  ];
  for (const c of cases)
    it(`${c.image}${c.allowLatest ? " (latest allowed)" : ""} → ${c.deny ? "deny" : "allow"}`, () => {
      const f = new Findings();
      checkImage(f, "spec.image", c.image, {
        ...DEFAULT_POLICY,
        allowLatest: c.allowLatest ?? false,
        allowedRegistries: c.registries ?? [],
      });
      const v = f.verdict();
      assert.equal(v.allowed, !c.deny, v.message);
      if (c.deny) {
        assert.equal(v.code, 403);
        assert.match(v.message, /^spec\.image: /);
        assert.match(v.message, c.deny);
      }
    });
});
