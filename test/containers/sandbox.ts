// A fleet's sandbox Pod as a container: the operator (a process) makes the SandboxFleet's Pod
// on the test cluster, and its spec (user, read-only root, capabilities, env, volumes, limits)
// becomes the container's run options; the trust volume holds a key of the test's.
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { api, testNamespace } from "../harness/cluster.ts";
import { imageId, podRunOptions, type RunOptions } from "../harness/containers.ts";
import { startOperator } from "../harness/operator.ts";
import { freePort } from "../harness/process.ts";
import { testTrust, type TestTrust } from "../harness/tokens.ts";
import { runningPod, tempDir, type After } from "./lib.ts";

export const LIMITS = { limits: { cpu: "1", memory: "512Mi" }, requests: { cpu: "100m", memory: "128Mi" } };

export type Exec = {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  signal: string | null;
};

/** A trust directory (the Pod's `agentry-trust` volume) with a key of the test's. */
export async function trustVolume(t: After): Promise<TestTrust> {
  return testTrust("agentry-operator", await tempDir(t, "trust"));
}

export interface SandboxPod {
  pod: k8s.V1Pod;
  options: RunOptions;
  trust: TestTrust;
  /** http://127.0.0.1:<port> the container will listen on. */
  base: string;
  /** Its /metrics, on the metrics port apart from the API. */
  metricsUrl: string;
  /** Host directory holding the Pod's volumes (workspaces/ and tmp/). */
  volumes: string;
}

/** The run options of a one-sandbox fleet's Pod; `env` is added (e.g. exec limits). */
export async function sandboxPodOptions(t: After, env: Record<string, string> = {}): Promise<SandboxPod> {
  const namespace = await testNamespace(t as never);
  await startOperator(t, { namespaces: [namespace], leaderElect: false });
  await api(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: "agentry.dev",
    version: "v1alpha1",
    plural: "sandboxfleets",
    namespace,
    body: {
      apiVersion: "agentry.dev/v1alpha1",
      kind: "SandboxFleet",
      metadata: { name: "fleet" },
      spec: {
        template: { image: "localhost/agentry/sandbox:test", resources: LIMITS },
        minReplicas: 1,
        maxReplicas: 1,
      },
    },
  });
  const pod = await runningPod(namespace, "agentry.dev/sandbox-fleet=fleet");
  const port = await freePort();
  const metricsPort = await freePort();
  const volumes = await tempDir(t, "sandbox-volumes");
  const trust = await trustVolume(t);
  const options = await podRunOptions(pod, {
    image: imageId("sandbox"),
    volumesDir: volumes,
    volumeSources: { "agentry-trust": trust.dir },
    env: {
      AGENTRY_SANDBOX_LISTEN: `127.0.0.1:${port}`,
      AGENTRY_SANDBOX_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      ...env,
    },
  });
  return {
    pod,
    options,
    trust,
    base: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    volumes,
  };
}

/** The sandbox runtime's HTTP API with a bearer token. */
export function sandboxApi(base: string, auth: Record<string, string>) {
  const call = async (method: string, path: string, body?: string) =>
    fetch(`${base}${path}`, {
      method,
      headers: { ...auth, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
  return {
    call,
    async exec(id: string, command: string[], timeoutSeconds?: number): Promise<Exec> {
      const res = await call("POST", `/workspaces/${id}/exec`, JSON.stringify({ command, timeoutSeconds }));
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as Exec;
    },
  };
}
