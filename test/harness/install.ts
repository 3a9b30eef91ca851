// Installs agentry's CRDs into a cluster with kubectl and waits until they are Established.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { binary } from "./binaries.ts";
import { repoRoot } from "./paths.ts";

function kubectl(kubeconfig: string, args: string[]): string {
  const res = spawnSync(binary("kubectl"), args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    encoding: "utf8",
  });
  if (res.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed:\n${res.stderr}`);
  return res.stdout;
}

export function installCrds(kubeconfig: string): void {
  kubectl(kubeconfig, [
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=agentry",
    "-f",
    join(repoRoot, "crds"),
  ]);
  kubectl(kubeconfig, [
    "wait",
    "--for=condition=Established",
    "crd",
    "-l",
    "app.kubernetes.io/part-of=agentry",
    "--timeout=60s",
  ]);
}
