// What a cluster test needs: clients for the control plane started by test/run.ts, a
// fresh namespace per test (deleted afterwards), kubectl, and access to the real
// PostgreSQL/Redis. Tests fail (never skip) under CI=true when something is missing.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { LABEL_AGENT, MANAGED_BY } from "../../operator/controllers/agentruntime/desired.ts";
import { waitFor } from "./process.ts";

export { waitFor };

function requireEnv(name: string, hint: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: ${hint}`);
  return value;
}

let kc: k8s.KubeConfig | undefined;

/** KubeConfig for the test control plane (KUBECONFIG written by test/run.ts). */
export function kubeConfig(): k8s.KubeConfig {
  if (!kc) {
    requireEnv("KUBECONFIG", "cluster tests run through `make test` (test/run.ts starts the control plane)");
    kc = new k8s.KubeConfig();
    kc.loadFromDefault();
  }
  return kc;
}

export function api<T extends k8s.ApiType>(cls: new (config: k8s.Configuration) => T): T {
  return kubeConfig().makeApiClient(cls);
}

/**
 * The Pod of AgentRuntime `namespace/name` (Pods are named after their template,
 * `<name>-<hash>`, so found by the agentry.dev/agent-runtime label): the newest one not
 * being deleted, else the newest of any, else undefined.
 */
export async function agentPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
  const list = await api(k8s.CoreV1Api).listNamespacedPod({
    namespace,
    labelSelector: `${LABEL_AGENT}=${name},app.kubernetes.io/managed-by=${MANAGED_BY["app.kubernetes.io/managed-by"]}`,
  });
  const newest = [...list.items].sort(
    (a, b) =>
      (b.metadata?.creationTimestamp?.getTime() ?? 0) - (a.metadata?.creationTimestamp?.getTime() ?? 0),
  );
  return newest.find((p) => !p.metadata?.deletionTimestamp) ?? newest[0];
}

const PLURALS = {
  AgentRuntime: "agentruntimes",
  Pipeline: "pipelines",
  SandboxFleet: "sandboxfleets",
  Workspace: "workspaces",
} as const;

/** Creates an agentry custom resource of `kind` named `name` with `spec` in `namespace`. */
export async function createCR(
  namespace: string,
  kind: keyof typeof PLURALS,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await api(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: "agentry.dev",
    version: "v1alpha1",
    plural: PLURALS[kind],
    namespace,
    body: { apiVersion: "agentry.dev/v1alpha1", kind, metadata: { name }, spec },
  });
}

/**
 * Creates a namespace named after the test with a random suffix, waits for its default
 * ServiceAccount (Pods need it), and deletes it when the test ends.
 */
export async function testNamespace(
  t: { name: string; after: (fn: () => Promise<void>) => void },
  labels: Record<string, string> = {},
): Promise<string> {
  const slug = t.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  const name = `t-${slug || "test"}-${randomBytes(3).toString("hex")}`;
  const core = api(k8s.CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name, labels: { "agentry.dev/test": "true", ...labels } } },
  });
  t.after(async () => {
    if (process.env.AGENTRY_TEST_KEEP_NAMESPACES) return;
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  await waitFor(`default ServiceAccount in ${name}`, () =>
    core.readNamespacedServiceAccount({ name: "default", namespace: name }).then(() => true),
  );
  return name;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command with the test cluster's environment (plus `env`, e.g. another KUBECONFIG);
 * never throws on a non-zero exit.
 */
export function run(
  command: string,
  args: string[],
  input?: string,
  env: NodeJS.ProcessEnv = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** kubectl from the control-plane build, against the test cluster. */
export function kubectl(args: string[], input?: string): Promise<RunResult> {
  requireEnv("AGENTRY_CONTROLPLANE_BIN", "cluster tests run through `make test`");
  return run("kubectl", args, input);
}

/**
 * URL of a real test service (postgres or redis). Outside CI a missing service skips
 * the test with the reason; under CI=true it fails it.
 */
export function serviceUrl(t: Pick<TestContext, "skip">, service: "postgres" | "redis"): string | undefined {
  const name = service === "postgres" ? "AGENTRY_TEST_POSTGRES_URL" : "AGENTRY_TEST_REDIS_URL";
  const url = process.env[name];
  if (url) return url;
  const why = `${name} is not set and no local ${service} server could be started`;
  if (process.env.CI === "true") throw new Error(`${why} (CI=true: not skipping)`);
  t.skip(why);
  return undefined;
}
