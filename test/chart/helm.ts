// What the chart tests share: the chart, helm from the control-plane build (with the pinned
// Kubernetes version for `helm template`, which cannot ask a cluster), release names and
// rendering.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { run, type RunResult } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";

export const chart = join(repoRoot, "charts", "agentry");
export const RESTRICTED = {
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
};
const KUBE_VERSION = ["--kube-version", "1.36.0"];

/** helm against the shared test cluster, or the cluster of `env.KUBECONFIG`. */
export const helm = (args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> =>
  run("helm", args[0] === "template" ? [...args, ...KUBE_VERSION] : args, undefined, env);

export const release = () => `ag-${randomBytes(3).toString("hex")}`;

export type Doc = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: unknown;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
};

/** The objects of `helm template agentry <dir> -n agentry-system <args>`, hooks included. */
export async function render(args: string[] = [], dir = chart): Promise<Doc[]> {
  const res = await helm(["template", "agentry", dir, "--namespace", "agentry-system", ...args]);
  assert.equal(res.code, 0, res.stderr);
  return (yaml.loadAll(res.stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null);
}
