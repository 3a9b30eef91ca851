// The committed OpenAPI document (openapi.json) is the contract: Schemathesis 4 runs every
// phase (examples, coverage, fuzzing, stateful) with every check against the live gateway
// on the real control plane, bounded in examples (schemathesis.toml), and must find nothing:
// no 5xx, no undocumented status, content type or header, no answer off its schema, no
// schema-valid request refused (save the cross-field rules the config names), no
// schema-violating request taken. The watch streams are left out (they never end; the SSE
// tests cover them). The gateway serves the data plane (files, exec, tasks, runs, logs) as
// in production, with its signing key and the operator's trust bundle (test/gateway/
// dataplane-env.ts); the test namespace holds no workspace, agent or pipeline run, so those
// routes answer their documented statuses (404 above all) and none of their streams (an
// exec's, a task's, a followed log) is opened here: test/gateway/dataplane.test.ts and
// test/cli/dataplane.test.ts drive them against real sandbox and agent processes.
// Schemathesis comes from hack/schemathesis.sh (`make fetch`).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../harness/paths.ts";
import { DEFAULT_MAX_EXEC_SECONDS } from "../../gateway/dataplane/common.ts";
import { startDataPlane } from "../gateway/dataplane-env.ts";
import { ADMIN_TOKEN } from "../gateway/harness.ts";

// Two minutes on a quiet machine; the bound leaves room for a loaded one (the runner stops
// any test at ten minutes).
const RUN_TIMEOUT_MS = 9 * 60_000;

function schemathesis(): string {
  const r = spawnSync("bash", [join(repoRoot, "hack", "schemathesis.sh"), "--installed"], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(r.stderr.trim() || "hack/schemathesis.sh --installed failed");
  return r.stdout.trim();
}

/** The failure sections of Schemathesis's report, without the long request bodies. */
function failures(output: string): string {
  return output
    .split("\n")
    .filter((l) => /^_{3,} |ST\d{3} |Invalid component|^\[\d{3}\]|curl -X|Expected:/.test(l))
    .map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l))
    .join("\n");
}

/** The server errors the run met, with the answers' bodies (which the report leaves out). */
async function serverErrors(harPath: string): Promise<string> {
  type Entry = {
    request: { method: string; url: string };
    response: { status: number; content?: { text?: string } };
  };
  let entries: Entry[];
  try {
    entries = (JSON.parse(await readFile(harPath, "utf8")) as { log: { entries: Entry[] } }).log.entries;
  } catch {
    return "";
  }
  return entries
    .filter((e) => e.response.status >= 500)
    .slice(0, 20)
    .map(
      (e) =>
        `${e.request.method} ${e.request.url} -> ${e.response.status} ${(e.response.content?.text ?? "").slice(0, 400)}`,
    )
    .join("\n");
}

describe("the OpenAPI document against the live gateway", () => {
  it("passes a bounded Schemathesis run of every phase and check", async (t) => {
    const st = schemathesis();
    // The committed document describes the default limits: the gateway runs with them.
    const { ns, gw } = await startDataPlane(t, { maxExecSeconds: DEFAULT_MAX_EXEC_SECONDS });
    // A real continue token (schemathesis.toml: lists go on from it).
    for (const name of ["page-a", "page-b", "page-c"]) {
      const r = await gw.call("POST", `/v1/namespaces/${ns}/sandboxfleets`, {
        body: {
          metadata: { name },
          spec: { template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 1 },
        },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const tokens: string[] = [];
    for (const path of [`/v1/namespaces/${ns}/sandboxfleets?limit=1`, "/v1/sandboxfleets?limit=1"]) {
      const r = await gw.call("GET", path);
      const token = (r.body.metadata as { continue?: string } | undefined)?.continue;
      assert.ok(token, `${path}: no continue token in ${JSON.stringify(r.body)}`);
      tokens.push(token);
    }
    const reports = await mkdtemp(join(tmpdir(), "agentry-st-"));
    t.after(() => rm(reports, { recursive: true, force: true }));
    const har = join(reports, "run.har");
    const args = [
      "--config-file",
      join(repoRoot, "test", "contract", "schemathesis.toml"),
      "--no-color",
      "run",
      join(repoRoot, "openapi.json"),
      "--url",
      gw.url,
      "--header",
      `Authorization: Bearer ${ADMIN_TOKEN}`,
      "--checks",
      "all",
      "--phases",
      "examples,coverage,fuzzing,stateful",
      "--exclude-path-regex",
      "^/v1/watch/",
      "--report",
      "har",
      "--report-har-path",
      har,
      "--seed",
      process.env.AGENTRY_ST_SEED ?? "20261201",
    ];
    const child = spawn(st, args, {
      cwd: repoRoot,
      env: {
        ...process.env,
        AGENTRY_ST_NAMESPACE: ns,
        AGENTRY_ST_CONTINUE: tokens[0]!,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(timer);
    const summary = output.slice(output.lastIndexOf("SUMMARY"));
    t.diagnostic(summary.split("\n").slice(0, 40).join("\n"));
    if (code === null)
      assert.fail(`schemathesis did not finish within ${RUN_TIMEOUT_MS / 60_000} min: killed`);
    const errors = code === 0 ? "" : await serverErrors(har);
    assert.equal(code, 0, `schemathesis exited ${code}:\n${failures(output)}\n${errors}\n${summary}`);
    assert.match(summary, /Tested: \d+/);
  });
});
