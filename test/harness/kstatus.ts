// How kstatus judges an object: sigs.k8s.io/cli-utils' kstatus library itself (the one behind
// Flux's and Argo CD's health checks and `kubectl wait`-style tools), built from its Go module
// by hack/kstatus/build.sh into a cache outside the repository (`make fetch`), and run on a
// batch of objects. Its rules, in order: Terminating when being deleted; InProgress while
// status.observedGeneration lags metadata.generation; InProgress when Reconciling is True;
// Failed when Stalled is True; Current when Ready is True, InProgress when it is not; Current
// when there is no Ready condition at all.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./paths.ts";

export type KStatus = "Current" | "InProgress" | "Failed" | "Terminating" | "NotFound" | "Unknown";

export interface Judged {
  status: KStatus;
  /** kstatus's message: why it is not Current. */
  why?: string;
}

let binary: string | undefined;

/** The kstatus binary, built on first use when `make fetch` has not built it yet. */
export function kstatusBinary(): string {
  if (binary) return binary;
  const script = join(repoRoot, "hack", "kstatus", "build.sh");
  const res = spawnSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  if (res.status !== 0) throw new Error(`building kstatus failed (exit ${res.status}); see the output above`);
  binary = res.stdout.trim().split("\n").pop()!;
  return binary;
}

/** kstatus's verdict on each object (full objects: apiVersion and kind included). */
export function judgeAll(objects: readonly object[]): Judged[] {
  const res = spawnSync(kstatusBinary(), [], { input: JSON.stringify(objects), encoding: "utf8" });
  if (res.status !== 0) throw new Error(`kstatus failed (exit ${res.status}): ${res.stderr}`);
  const results = JSON.parse(res.stdout) as { status: KStatus; message: string }[];
  return results.map((r) =>
    r.status === "Current" ? { status: r.status } : { status: r.status, why: r.message },
  );
}

export function judge(obj: object): Judged {
  return judgeAll([obj])[0]!;
}
