// What the container suite's tests share: the apiserver as a Pod would see it (a projected
// ServiceAccount token, the CA, KUBERNETES_SERVICE_HOST/PORT on loopback), the checks every
// image gets (a clean SIGTERM within the grace period, no writes outside its volumes), and
// a Pod of the cluster run as a container.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { api, kubeConfig, waitFor } from "../harness/cluster.ts";
import { Container, type RunOptions } from "../harness/containers.ts";

export type After = { after: (fn: () => Promise<void> | void) => void };

/** A temp directory removed when the test ends. */
export async function tempDir(t: After, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `agentry-${prefix}-`));
  await chmod(dir, 0o755);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** host and port of the apiserver (loopback), as KUBERNETES_SERVICE_HOST/PORT give them in a Pod. */
export function apiserver(): { host: string; port: number; ca: string } {
  const cluster = kubeConfig().getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in KUBECONFIG");
  const url = new URL(cluster.server);
  const ca = cluster.caData
    ? Buffer.from(cluster.caData, "base64").toString()
    : (() => {
        throw new Error("the test kubeconfig has no certificate-authority-data");
      })();
  return { host: url.hostname, port: Number(url.port || 443), ca };
}

/**
 * The files the kubelet projects into /var/run/secrets/kubernetes.io/serviceaccount: a
 * token of this ServiceAccount (TokenRequest, one hour), the cluster CA and the namespace.
 */
export async function serviceAccountDir(
  t: After,
  namespace: string,
  serviceAccount: string,
): Promise<{ dir: string; host: string; port: number; token: string }> {
  const { host, port, ca } = apiserver();
  const res = await api(k8s.CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = res.status?.token;
  if (!token) throw new Error(`no token for ServiceAccount ${namespace}/${serviceAccount}`);
  const dir = await tempDir(t, "sa");
  await writeFile(join(dir, "token"), token, { mode: 0o644 });
  await writeFile(join(dir, "ca.crt"), ca, { mode: 0o644 });
  await writeFile(join(dir, "namespace"), namespace, { mode: 0o644 });
  return { dir, host, port, token };
}

/** Runs a container and removes it when the test ends. */
export async function start(t: After, options: RunOptions): Promise<Container> {
  const c = await Container.run(options);
  t.after(() => c.remove());
  return c;
}

/**
 * SIGTERM as the kubelet sends it (podman stop with the Pod's terminationGracePeriodSeconds):
 * the program must exit 0 by itself, well before the SIGKILL at the end of the grace period.
 */
export async function assertCleanStop(c: Container, graceSeconds: number): Promise<number> {
  const { exitCode, seconds } = await c.stop(graceSeconds);
  const logs = exitCode === 0 && seconds < graceSeconds - 1 ? "" : await c.logs();
  assert.equal(exitCode, 0, `exit code after SIGTERM (${seconds.toFixed(1)}s); logs:\n${logs}`);
  assert.ok(seconds < graceSeconds - 1, `stopped in ${seconds.toFixed(1)}s, grace ${graceSeconds}s`);
  return seconds;
}

/**
 * What the program writes outside its volumes: the same container with a writable root
 * filesystem, made ready and exercised, then `podman diff` against what the runtime alone
 * changes in an identical container that runs `true` (mount points, /etc/hosts and such).
 * Returns the paths only the program changed; the caller expects none.
 */
export async function writesOutsideVolumes(
  t: After,
  options: RunOptions,
  exercise: (c: Container) => Promise<void>,
): Promise<string[]> {
  const writable = { ...options, readOnly: false };
  const baseline = await start(t, { ...writable, entrypoint: ["/bin/true"], args: [] });
  await waitFor("the baseline container to exit", async () => !(await baseline.state()).running);
  const runtimeOwn = new Set(await baseline.diff());
  await baseline.remove();
  const c = await start(t, writable);
  await exercise(c);
  await c.stop(30);
  const changed = (await c.diff()).filter((line) => !runtimeOwn.has(line));
  await c.remove();
  return changed;
}

/** The first pod matching the selector, once it is Running (kwok gives it an IP). */
export function runningPod(namespace: string, labelSelector: string, timeoutMs = 60_000): Promise<k8s.V1Pod> {
  return waitFor(
    `a running pod ${labelSelector} in ${namespace}`,
    async () => {
      const list = await api(k8s.CoreV1Api).listNamespacedPod({ namespace, labelSelector });
      return list.items.find((p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp);
    },
    { timeoutMs },
  );
}

/** JSON of a response, with the status, for assertions that show what came back. */
export async function json(res: Response): Promise<{ status: number; body: unknown }> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}
