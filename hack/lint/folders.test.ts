// The folder rule (folders.ts) on sample imports, and proof that eslint.config.js turns it
// on for every program file.
import { join } from "node:path";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ESLint, RuleTester } from "eslint";
import tseslint from "typescript-eslint";
import { repoRoot } from "../../test/harness/paths.ts";
import { folderImports } from "./folders.ts";

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });
const at = (file: string, code: string) => ({
  code,
  filename: join(repoRoot, file),
  options: [{ root: repoRoot }],
});
const denied = (file: string, code: string, from: string, to: string) => ({
  ...at(file, code),
  errors: [{ message: new RegExp(`^${from}/ may not import ${to}/ `) }],
});

tester.run("agentry/folder-imports", folderImports, {
  valid: [
    at("operator/main.ts", 'import { KubeClient } from "../lib/kube/client.ts";'),
    at("operator/controllers/x.ts", 'import type { AgentRuntime } from "../../api/v1alpha1/index.ts";'),
    at("operator/controllers/x.ts", 'import { SandboxEnv } from "../../contracts/sandbox.ts";'),
    at("operator/controllers/x.ts", 'import { placeAll } from "./placement.ts";'),
    at("gateway/routes/admit.ts", 'import { validate } from "../../lib/admission/index.ts";'),
    at("runtimes/agent/server.ts", 'import { ExecRequest } from "../../contracts/sandbox.ts";'),
    at("runtimes/agent/x.test.ts", 'import { waitFor } from "../../test/harness/process.ts";'),
    at("lib/http/problem.ts", 'import type { Problem } from "../../contracts/problem.ts";'),
    at("lib/kube/conditions.ts", 'import type { Condition } from "../../api/v1alpha1/index.ts";'),
    at("contracts/sandbox.client.ts", 'import type { Problem } from "./problem.ts";'),
    at("test/harness/x.ts", 'import "../../operator/main.ts";'),
    at("bench/lib.ts", 'import { startOperator } from "../test/harness/operator.ts";'),
    at("operator/x.ts", 'import { z } from "zod";'),
  ],
  invalid: [
    denied("gateway/x.ts", 'import { KubeClient } from "../operator/kube/client.ts";', "gateway", "operator"),
    denied(
      "gateway/routes/x.ts",
      'import { rules } from "../../webhook/rules/index.ts";',
      "gateway",
      "webhook",
    ),
    denied(
      "operator/controllers/x.ts",
      'import "../../runtimes/sandbox/client.ts";',
      "operator",
      "runtimes/sandbox",
    ),
    denied(
      "runtimes/agent/x.ts",
      'export { json } from "../sandbox/server.ts";',
      "runtimes/agent",
      "runtimes/sandbox",
    ),
    denied(
      "runtimes/sandbox/x.ts",
      'const m = import("../agent/config.ts");',
      "runtimes/sandbox",
      "runtimes/agent",
    ),
    denied("webhook/x.ts", 'export * from "../gateway/problem.ts";', "webhook", "gateway"),
    denied("lib/kube/x.ts", 'import type { Metrics } from "../../operator/metrics.ts";', "lib", "operator"),
    denied("contracts/x.ts", 'import { json } from "../lib/http/body.ts";', "contracts", "lib"),
    denied("api/v1alpha1/x.ts", 'import "../../contracts/agent.ts";', "api", "contracts"),
    denied("operator/x.ts", 'import { waitFor } from "../test/harness/process.ts";', "operator", "test"),
  ],
});

describe("eslint.config.js", () => {
  it("turns the folder rule on for program, lib and contracts files", async () => {
    const eslint = new ESLint({ cwd: repoRoot });
    for (const file of [
      "operator/main.ts",
      "gateway/main.ts",
      "runtimes/agent/main.ts",
      "lib/log.ts",
      "contracts/agent.ts",
    ]) {
      const config = (await eslint.calculateConfigForFile(join(repoRoot, file))) as {
        rules: Record<string, unknown>;
      };
      assert.deepEqual(config.rules["agentry/folder-imports"], [2, { root: repoRoot }], file);
    }
  });
});
