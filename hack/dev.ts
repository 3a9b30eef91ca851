// `make dev`: a working agentry environment for a person.
// - With KUBECONFIG set, it uses that cluster as it is.
// - Otherwise it starts the real local control plane (etcd, kube-apiserver,
//   kube-controller-manager, kube-scheduler, kwok with 3 fake nodes) from the cache.
// Then it applies what exists of agentry (CRDs, examples), prints what to run next, and
// keeps running until Ctrl-C, when it stops everything it started.
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import * as yaml from "js-yaml";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { controlPlaneBinDir } from "../test/harness/binaries.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { installCrds } from "../test/harness/install.ts";
import { waitFor } from "../test/harness/process.ts";

const bin = controlPlaneBinDir();
let stopping = false;
const kubectl = join(bin, "kubectl");
let cp: ControlPlane | undefined;
let kubeconfig = process.env.KUBECONFIG ?? "";

if (kubeconfig) {
  console.log(`Using the cluster of KUBECONFIG=${kubeconfig}`);
} else {
  console.log("No KUBECONFIG given: starting the local control plane (Ctrl-C stops it)...");
  cp = await ControlPlane.start({ verbose: true });
  const stable = join(repoRoot, ".tmp", "dev", "kubeconfig");
  await mkdir(join(repoRoot, ".tmp", "dev"), { recursive: true });
  await copyFile(cp.kubeconfig, stable);
  kubeconfig = stable;
}

const env = { ...process.env, KUBECONFIG: kubeconfig };
function kc(args: string[]): void {
  const res = spawnSync(kubectl, args, { env, stdio: "inherit" });
  if (res.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (exit ${res.status})`);
}

console.log("Installing the agentry CRDs ...");
installCrds(kubeconfig);
const children: ChildProcess[] = [];
/** Starts one of agentry's programs from source with the cluster's KUBECONFIG; output goes to .tmp/dev/<name>.log. */
function startProgram(name: string, entry: string, args: string[]): void {
  const log = join(repoRoot, ".tmp", "dev", `${name}.log`);
  const out = createWriteStream(log, { flags: "a" });
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, entry), ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  child.once("exit", (code) => {
    if (!stopping) console.error(`${name} exited with code ${code}; see ${log}`);
  });
  children.push(child);
  console.log(`Started ${name} (logs: ${log})`);
}
await mkdir(join(repoRoot, ".tmp", "dev"), { recursive: true });
startProgram("operator", "operator/main.ts", ["--leader-elect=false", "--health-addr=127.0.0.1:8081"]);

// The gateway, with one bearer token for this session (only its sha256 is written down).
const token = randomBytes(24).toString("hex");
const tokensFile = join(repoRoot, ".tmp", "dev", "gateway-tokens.yaml");
const sha256 = createHash("sha256").update(token).digest("hex");
await writeFile(tokensFile, yaml.dump([{ sha256, user: "dev-admin", groups: ["system:masters"] }]), {
  mode: 0o600,
});
startProgram("gateway", "gateway/main.ts", ["--listen=127.0.0.1:8080", `--tokens-file=${tokensFile}`]);

// The admission webhook only for the local control plane: a remote apiserver could not
// call back to this machine.
if (cp) {
  // Its own namespace (holding its CA Secret) is the one it does not admit: not default.
  spawnSync(kubectl, ["create", "namespace", "agentry-system"], { env, stdio: "ignore" });
  startProgram("webhook", "webhook/main.ts", [
    "--listen=127.0.0.1:9443",
    "--webhook-url=https://127.0.0.1:9443",
    "--cert-hosts=127.0.0.1",
    "--namespace=agentry-system",
    "--cert-secret-name=agentry-dev-webhook-tls",
  ]);
}
await waitFor("operator, gateway and webhook to be ready", async () => {
  const urls = ["http://127.0.0.1:8081/readyz", "http://127.0.0.1:8080/readyz"];
  const oks = await Promise.all(
    urls.map((u) =>
      fetch(u)
        .then((r) => r.ok)
        .catch(() => false),
    ),
  );
  return oks.every(Boolean);
});

if (existsSync(join(repoRoot, "examples"))) {
  console.log("Applying examples/ into namespace default ...");
  // The webhook may still be publishing its CA to the apiserver: retry until admitted.
  await waitFor(
    "examples admitted",
    () => {
      const res = spawnSync(kubectl, ["apply", "-n", "default", "-R", "-f", join(repoRoot, "examples")], {
        env,
        encoding: "utf8",
      });
      if (res.status !== 0) throw new Error(res.stderr.trim());
      process.stdout.write(res.stdout);
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 1000 },
  );
}

kc(["get", "nodes"]);
console.log(`
The cluster is ready. In another shell:

  export KUBECONFIG=${kubeconfig}
  export PATH=${bin}:$PATH      # kubectl and helm built for this control plane
  kubectl get nodes
  kubectl get agentry -A
  curl -s localhost:8081/metrics | grep agentry_   # operator metrics
  curl -s -H "Authorization: Bearer ${token}" localhost:8080/v1/namespaces/default/agentruntimes   # REST gateway
  curl -s localhost:8080/openapi.json | head -c 300

Press Ctrl-C to stop${cp ? " the local control plane" : ""}.`);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log("\nStopping...");
  await Promise.all(
    children.map(
      (c) =>
        new Promise((resolve) => {
          if (c.exitCode !== null) return resolve(undefined);
          c.once("exit", resolve);
          c.kill("SIGTERM");
        }),
    ),
  );
  await cp?.stop();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
setInterval(() => undefined, 1 << 30);
