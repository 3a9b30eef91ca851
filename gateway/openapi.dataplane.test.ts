import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { relativePathProblem } from "../contracts/sandbox.ts";
import { dataPlaneSchemas, PATH_PATTERN } from "./openapi.dataplane.ts";

const pattern = new RegExp(PATH_PATTERN);
const printable = fc.string({
  unit: fc.constantFrom(..." !\"#$%&'()*+,-./0123456789:;<=>?@AZaz[]^_`{|}~"),
  maxLength: 600,
});

describe("the data plane's documented path", () => {
  it("every path the pattern allows, the gateway and sandbox accept (property)", () => {
    fc.assert(
      fc.property(printable, (path) => {
        if (pattern.test(path) && path.length <= 4096)
          assert.equal(relativePathProblem(path, "path"), undefined, path);
      }),
      { numRuns: 2000 },
    );
  });

  it("allows ordinary paths and refuses what the sandbox refuses", () => {
    for (const ok of [
      "a",
      "src/main.py",
      ".git/config",
      "...",
      "..a/b",
      ".x",
      "a b/c-d_e.txt",
      "x".repeat(255),
    ])
      assert.ok(pattern.test(ok), ok);
    for (const bad of [
      "",
      "/etc",
      "a//b",
      "a/",
      "./a",
      "a/./b",
      "..",
      "../x",
      "a/..",
      "x".repeat(256),
      "a\0b",
    ])
      assert.ok(!pattern.test(bad), JSON.stringify(bad));
  });

  it("bounds an exec's timeoutSeconds by the gateway's limit", () => {
    const schema = (max?: number) =>
      (dataPlaneSchemas(max) as { ExecRequest: { properties: { timeoutSeconds: { maximum: number } } } })
        .ExecRequest;
    assert.equal(schema().properties.timeoutSeconds.maximum, 600);
    assert.equal(schema(60).properties.timeoutSeconds.maximum, 60);
  });
});
