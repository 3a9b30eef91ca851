// The test runner behind `make test`: starts one real local control plane for the whole
// run (only when integration tests are selected), runs every test file with node's test
// runner against it, tears it down (keeping logs when something failed) and exits with
// the runner's status.
//
//   node --import tsx test/run.ts               all tests
//   node --import tsx test/run.ts --unit        unit tests only (no control plane)
//   node --import tsx test/run.ts test/foo ...  only files under these paths
//   ... --test-name-pattern=<regexp>           only the tests whose names match (node's own flag)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { glob } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { controlPlaneBinDir } from "./harness/binaries.ts";
import { removeRunContainers } from "./harness/containers.ts";
import { ControlPlane } from "./harness/controlplane.ts";
import { startServices, type Services } from "./harness/services.ts";
import { installCrds } from "./harness/install.ts";
import { repoRoot } from "./harness/paths.ts";
import { enterLoopbackNetns } from "./harness/netns.ts";
import { errorMessage } from "../lib/log.ts";

// Everything below runs in a network namespace with only loopback (where root allows it).
await enterLoopbackNetns("make test");

const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const namePatterns = args.filter((a) => a.startsWith("--test-name-pattern="));
const filters = args.filter((a) => !a.startsWith("--")).map((a) => relative(repoRoot, resolve(a)) || ".");

const isClusterTest = (f: string) => f.startsWith("test/") && !f.startsWith("test/harness/");

const all: string[] = [];
for await (const f of glob("**/*.test.ts", { cwd: repoRoot, exclude: (p) => p.includes("node_modules") })) {
  all.push(f);
}
const selected = all
  .filter((f) => filters.length === 0 || filters.some((p) => p === "." || f === p || f.startsWith(`${p}/`)))
  .filter((f) => !unitOnly || !isClusterTest(f))
  .sort();
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(" ") || "(all)"}`);
  process.exit(1);
}
const needsCluster = selected.some(isClusterTest);

let cp: ControlPlane | undefined;
let services: Services | undefined;
let stopping = false;
// Containers the tests start carry this run's id, so its end removes whatever a test left.
const runId = randomBytes(6).toString("hex");
const env: NodeJS.ProcessEnv = { ...process.env, AGENTRY_TEST_RUN: "1", AGENTRY_TEST_RUN_ID: runId };

async function shutdown(keep: boolean): Promise<void> {
  if (stopping) return;
  stopping = true;
  const left = await removeRunContainers(runId).catch(() => 0);
  if (left) console.error(`[test] removed ${left} container(s) the tests left running`);
  await services?.stop({ keep });
  await cp?.stop({ keep });
  if (keep && cp) console.error(`\ncontrol plane logs kept in ${cp.logDir}`);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => void shutdown(false).then(() => process.exit(130)));
}

if (needsCluster) {
  const t0 = Date.now();
  try {
    const bin = controlPlaneBinDir();
    cp = await ControlPlane.start({ verbose: true });
    installCrds(cp.kubeconfig);
    services = await startServices({ verbose: true });
    Object.assign(env, services.env, {
      KUBECONFIG: cp.kubeconfig,
      AGENTRY_CONTROLPLANE_BIN: bin,
      AGENTRY_CONTROLPLANE_DIR: cp.dir,
      PATH: `${bin}:${process.env.PATH ?? ""}`,
    });
  } catch (err) {
    console.error(`\n[test] setup failed: ${errorMessage(err)}`);
    await shutdown(true);
    process.exit(1);
  }
  console.error(`[test] control plane and services ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

const concurrency = process.env.AGENTRY_TEST_CONCURRENCY ?? "2";
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    "--test-timeout=600000",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=./test/harness/summary-reporter.ts",
    "--test-reporter-destination=stdout",
    ...namePatterns,
    ...selected,
  ],
  { cwd: repoRoot, env, stdio: "inherit" },
);
const code: number = await new Promise((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
await shutdown(code !== 0);
process.exit(code);
