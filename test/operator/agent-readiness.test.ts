// readinessReason from the agent itself: while Kubernetes reports an agent's Pod running
// but not ready, the operator reads the agent's GET /readyz and says what the agent says.
// The agent is the real agent program on loopback (kwok's Pods have no network), reached
// through the operator's --pod-address-map, trusting the keys of the namespace's trust
// ConfigMap as its Pod would (the agent tells its reason only to a token it trusts).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { repoRoot } from "../harness/paths.ts";
import { startProgram } from "../harness/process.ts";

const GROUP = { group: "agentry.dev", version: "v1alpha1", plural: "agentruntimes" };
type Status = {
  phase?: string;
  podName?: string;
  readinessReason?: string;
  conditions?: { type: string; reason: string }[];
};

/** The agent program serving on a free loopback port; its port once it listens. */
async function startAgent(t: { after: (fn: () => Promise<void>) => void }, env: Record<string, string>) {
  const { ready } = await startProgram(t, {
    what: "the agent",
    script: join(repoRoot, "runtimes/agent/main.ts"),
    args: ["serve", "--host=127.0.0.1", "--port=0", "--metrics-addr=127.0.0.1:0"],
    cwd: repoRoot,
    env: { PATH: process.env.PATH, AGENTRY_AGENT_NAME: "agent", ...env },
    ready: (l) => (l.includes('"agent listening"') ? (JSON.parse(l) as { port: number }).port : undefined),
    stopSignal: "SIGKILL",
  });
  return ready;
}

describe("AgentRuntime readinessReason from the agent's /readyz", () => {
  it("says what the agent reports while its Pod runs but is not ready", async (t) => {
    const namespace = await testNamespace(t);
    const dir = await mkdtemp(join(tmpdir(), "agentry-agent-map-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const map = join(dir, "addresses.json");
    await writeFile(map, "{}");
    await startOperator(t, { namespaces: [namespace], podAddressMap: map });
    const custom = api(k8s.CustomObjectsApi);
    const core = api(k8s.CoreV1Api);
    const status = async () =>
      (
        (await custom.getNamespacedCustomObject({ ...GROUP, namespace, name: "agent" })) as {
          status?: Status;
        }
      ).status ?? {};

    await custom.createNamespacedCustomObject({
      ...GROUP,
      namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "agent" },
        spec: { image: "registry.example/agent:1" },
      },
    });
    await waitFor("the agent Ready (kwok)", async () => (await status()).phase === "Ready");
    // Its Pod is named after its template (agent-<hash>).
    const podName = (await status()).podName!;

    // The real agent program with a model but no API key: /readyz answers "error" and why.
    const trust = await mkdtemp(join(tmpdir(), "agentry-agent-trust-"));
    t.after(() => rm(trust, { recursive: true, force: true }));
    const bundle = await waitFor("the trust ConfigMap", () =>
      core.readNamespacedConfigMap({ namespace, name: "agentry-trust" }).catch(() => undefined),
    );
    for (const [file, pem] of Object.entries(bundle.data ?? {})) await writeFile(join(trust, file), pem);
    const port = await startAgent(t, {
      AGENTRY_MODEL_PROVIDER: "openai",
      AGENTRY_MODEL: "gpt",
      AGENTRY_NAMESPACE: namespace,
      AGENTRY_TRUST_DIR: trust,
      AGENTRY_POD_NAME: podName,
      AGENTRY_POD_NAMESPACE: namespace,
    });
    await writeFile(map, JSON.stringify({ [`${namespace}/${podName}`]: `127.0.0.1:${port}` }));
    // The kubelet's view: the container runs, the readiness probe fails.
    const setReady = (ready: boolean) =>
      core.patchNamespacedPodStatus(
        {
          name: podName,
          namespace,
          body: {
            status: {
              conditions: [
                { type: "PodScheduled", status: "True" },
                { type: "Initialized", status: "True" },
                { type: "ContainersReady", status: ready ? "True" : "False" },
                {
                  type: "Ready",
                  status: ready ? "True" : "False",
                  ...(ready ? {} : { reason: "ContainersNotReady" }),
                },
              ],
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    await setReady(false);
    const failing = await waitFor("the agent's own reason in status", async () => {
      const s = await status();
      return s.phase === "Error" ? s : undefined;
    });
    assert.match(
      failing.readinessReason ?? "",
      /^the agent reports an error: provider openai needs an API key.*\(GET \/readyz\)/,
    );
    assert.equal(failing.conditions?.find((c) => c.type === "Ready")?.reason, "AgentError");

    // Without an answer from the agent, status falls back to what Kubernetes knows.
    await writeFile(map, "{}");
    const fallback = await waitFor("the Kubernetes-only reason", async () => {
      const s = await status();
      return s.phase === "Starting" ? s : undefined;
    });
    assert.match(fallback.readinessReason ?? "", /running but not ready yet/);

    // Ready again once the Pod is.
    await setReady(true);
    await waitFor("Ready again", async () => (await status()).phase === "Ready");
  });
});
