// Locates (and if needed builds) the control-plane binaries via hack/controlplane/build.sh,
// which caches them outside the repository keyed by the pinned versions.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./paths.ts";

export const BINARIES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
  "helm",
] as const;
export type Binary = (typeof BINARIES)[number];

let cached: string | undefined;

/** Returns the directory holding the control-plane binaries, building them on first use. */
export function controlPlaneBinDir(): string {
  if (cached) return cached;
  const fromEnv = process.env.AGENTRY_CONTROLPLANE_BIN;
  if (fromEnv && BINARIES.every((b) => existsSync(join(fromEnv, b)))) {
    cached = fromEnv;
    return cached;
  }
  const script = join(repoRoot, "hack", "controlplane", "build.sh");
  // Progress goes to our stderr; the bin directory is the last line of stdout.
  const result = spawnSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`building the local control plane failed (exit ${result.status}); see the output above`);
  }
  const dir = result.stdout.trim().split("\n").pop() ?? "";
  const missing = BINARIES.filter((b) => !existsSync(join(dir, b)));
  if (missing.length > 0) throw new Error(`control plane binaries missing in ${dir}: ${missing.join(", ")}`);
  cached = dir;
  return dir;
}

export function binary(name: Binary): string {
  return join(controlPlaneBinDir(), name);
}
