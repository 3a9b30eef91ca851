// `make dev`: a working agentry environment for a person (the bring-up itself is
// test/harness/platform.ts, which test/dev runs too).
// - With KUBECONFIG set, it uses that cluster as it is.
// - Otherwise it starts the real local control plane (etcd, kube-apiserver,
//   kube-controller-manager, kube-scheduler, kwok with 3 fake nodes) from the cache, with
//   real sandbox and agent runtime processes on loopback behind the fake pods and a local
//   volume provisioner.
// It applies examples/, waits (60 s at most) until every example is Ready, prints what to
// run next, and keeps running until Ctrl-C, when it stops everything it started.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";
import { startPlatform, waitForCurrent } from "../test/harness/platform.ts";
import { errorMessage } from "../lib/log.ts";

const dir = join(repoRoot, ".tmp", "dev");
// A previous session's pods, volumes and logs belong to a cluster that is gone.
await rm(dir, { recursive: true, force: true });
const given = process.env.KUBECONFIG;
console.log(
  given
    ? `Using the cluster of KUBECONFIG=${given}`
    : "No KUBECONFIG given: starting the local control plane (Ctrl-C stops it)...",
);

let platform: Awaited<ReturnType<typeof startPlatform>> | undefined;
let stopping = false;
async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log("\nStopping...");
  await platform?.stop();
  process.exit(code);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

try {
  platform = await startPlatform({
    dir,
    ...(given ? { kubeconfig: given } : {}),
    ports: { operator: 8081, gateway: 8080, webhook: 9443 },
    examplesNamespace: "default",
    say: (line) => console.log(line),
    ...(process.env.AGENTRY_DEV_MODEL_API_KEY ? { modelApiKey: process.env.AGENTRY_DEV_MODEL_API_KEY } : {}),
  });
} catch (err) {
  console.error(`make dev failed: ${errorMessage(err)}`);
  await stop(1);
}
const p = platform!;

console.log("Waiting for every example to be Ready (60 s at most) ...");
const t0 = Date.now();
const { ok, objects } = await waitForCurrent(p.kubeconfig, "default", 60_000);
for (const o of objects)
  console.log(`  ${o.status.padEnd(10)} ${o.kind}/${o.name}${o.why ? `  (${o.why})` : ""}`);
console.log(
  ok
    ? `All ${objects.length} examples are Ready (${((Date.now() - t0) / 1000).toFixed(1)} s).`
    : "Not every example became Ready in 60 s: see above, and the logs in .tmp/dev/.",
);

// A sandbox process to show: the one holding workspace alice-notebook.
const map = p.pods ? (JSON.parse(await readFile(p.pods.mapFile, "utf8")) as Record<string, string>) : {};
const ws = JSON.parse(
  p.kubectl(["get", "workspace", "alice-notebook", "-n", "default", "-o", "json"]).stdout || "{}",
) as { status?: { sandboxPod?: string } };
const sandbox = ws.status?.sandboxPod ? map[`default/${ws.status.sandboxPod}`] : undefined;
const auth = `-H "Authorization: Bearer ${p.token}"`;
// Sandboxes answer only signed tokens: one for that workspace (files, exec), valid 15 minutes,
// signed with the harness's key, which every process behind a fake pod trusts.
const wsToken = p.pods
  ? await p.pods.token("workspace:default.alice-notebook", ["files", "exec"], 900)
  : undefined;
console.log(`
The platform is up.

  web console: ${p.gatewayUrl}/ui/   (sign in with the token ${p.token})

In another shell:

  export KUBECONFIG=${p.kubeconfig}
  export PATH=${p.binDir}:$PATH      # kubectl and helm built for this control plane
  kubectl get agentry -A
  kubectl get sandboxfleets,pods -o wide

  # create a Workspace through the REST gateway, then read it back
  curl -s ${auth} -H 'Content-Type: application/json' \\
    -d '{"metadata":{"name":"try-me"},"spec":{"fleetRef":{"name":"default-fleet"},"ownerId":"you"}}' \\
    ${p.gatewayUrl}/v1/namespaces/default/workspaces
  curl -s ${auth} ${p.gatewayUrl}/v1/namespaces/default/workspaces/try-me

  # the data plane through the gateway: a command in workspace alice-notebook, streamed,
  # then the file it wrote, and a task to an agent (RBAC-checked, audited, tokens signed by the gateway)
  curl -sN ${auth} -H 'Accept: application/x-ndjson' -H 'Content-Type: application/json' \\
    -d '{"command":["sh","-c","echo hello > hello.txt; ls -l"]}' \\
    ${p.gatewayUrl}/v1/namespaces/default/workspaces/alice-notebook/exec
  curl -s ${auth} '${p.gatewayUrl}/v1/namespaces/default/workspaces/alice-notebook/files/content?path=hello.txt'
  kubectl get agentruntimes    # then: curl -s ${auth} -H 'Content-Type: application/json' -d '{"input":"hi"}' ${p.gatewayUrl}/v1/namespaces/default/agentruntimes/<name>/tasks
${
  sandbox
    ? `
  # run a command in workspace alice-notebook, on its sandbox runtime process (${sandbox}),
  # with a token for that workspace (valid 15 minutes; without one the sandbox answers 401)
  export WS_TOKEN=${wsToken}
  curl -s -H "Authorization: Bearer $WS_TOKEN" -H 'Content-Type: application/json' \\
    -d '{"command":["sh","-c","echo hello > hello.txt; ls -l"]}' \\
    http://${sandbox}/workspaces/default.alice-notebook/exec
  curl -s -H "Authorization: Bearer $WS_TOKEN" http://${sandbox}/workspaces/default.alice-notebook/files/hello.txt
  cat ${p.pods?.mapFile}    # every fake pod's process on loopback`
    : ""
}

  curl -s localhost:${new URL(p.operatorUrl).port}/metrics | grep agentry_   # operator metrics
  curl -s ${p.gatewayMetricsUrl} | grep agentry_   # gateway metrics (its own port)

Real here: the control plane (etcd, kube-apiserver, controller-manager, scheduler), the
operator, webhook and gateway, and our sandbox and agent runtimes as processes (logs in
.tmp/dev/). Simulated: kubelets (kwok) and container isolation.

Press Ctrl-C to stop.`);
setInterval(() => undefined, 1 << 30);
