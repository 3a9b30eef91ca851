// Runs the real admission webhook (webhook/main.ts) as a child process on a free loopback
// port with self-managed certificates, registering its own webhook configurations under
// unique names, scoped by a namespace label to the test's namespaces only (the control
// plane is shared with other test files). Stopping the test deletes the configurations.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { kubectl, run } from "./cluster.ts";
import { repoRoot } from "./paths.ts";
import { freePort, waitFor } from "./process.ts";

/** The namespace label a webhook started here selects on: give it to testNamespace(). */
export const WEBHOOK_TEST_LABEL = "agentry.dev/webhook-test";

export interface WebhookProcess {
  id: string;
  port: number;
  validating: string;
  mutating: string;
  logs: Record<string, unknown>[];
  /** Namespace labels that put a namespace under this webhook. */
  labels: Record<string, string>;
  stop(): Promise<void>;
}

export interface WebhookOptions {
  /** Namespace of the webhook itself (its certificate Secret lives here). */
  namespace: string;
  args?: string[];
  /** Port to listen on; default: a free one. */
  port?: number;
  /** Port the apiserver is told to call (a proxy in front of the webhook); default: its own. */
  urlPort?: number;
  /** Another cluster than the run's (KUBECONFIG). */
  kubeconfig?: string;
}

/** Allocates the id and labels first, so the test can make its namespaces before starting. */
export function webhookId(): { id: string; labels: Record<string, string> } {
  const id = randomBytes(4).toString("hex");
  return { id, labels: { [WEBHOOK_TEST_LABEL]: id } };
}

export async function startWebhook(
  t: { after: (fn: () => Promise<void>) => void },
  ident: { id: string; labels: Record<string, string> },
  options: WebhookOptions,
): Promise<WebhookProcess> {
  const port = options.port ?? (await freePort());
  const validating = `agentry-test-${ident.id}-validating`;
  const mutating = `agentry-test-${ident.id}-defaulting`;
  const args = [
    "--import",
    "tsx",
    join(repoRoot, "webhook", "main.ts"),
    `--listen=127.0.0.1:${port}`,
    `--webhook-url=https://127.0.0.1:${options.urlPort ?? port}`,
    "--cert-hosts=127.0.0.1",
    `--namespace=${options.namespace}`,
    `--validating-config-name=${validating}`,
    `--mutating-config-name=${mutating}`,
    `--namespace-selector=${JSON.stringify({ matchLabels: ident.labels })}`,
    "--log-level=debug",
    ...(options.args ?? []),
  ];
  const env = options.kubeconfig ? { KUBECONFIG: options.kubeconfig } : {};
  const ctl = (a: string[]) => run("kubectl", a, undefined, env);
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ message: line });
    }
  });
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  t.after(async () => {
    await stop();
    await ctl(["delete", "validatingwebhookconfiguration", validating, "--ignore-not-found"]);
    await ctl(["delete", "mutatingwebhookconfiguration", mutating, "--ignore-not-found"]);
  });
  await waitFor(
    "the webhook to start",
    () => {
      if (child.exitCode !== null)
        throw new Error(`webhook exited with ${child.exitCode}: ${stderr.join("\n")}`);
      return logs.some((l) => l.message === "webhook starting");
    },
    { timeoutMs: 60_000 },
  );
  return { id: ident.id, port, validating, mutating, logs, labels: ident.labels, stop };
}

/**
 * Waits until the apiserver calls the webhook for `namespace` (configurations load
 * asynchronously): a Workspace naming a missing fleet, applied as `name`, is refused by the
 * webhook's rule. Sent with --dry-run=server: under failurePolicy Ignore a probe the
 * apiserver admits unchecked (the webhook not reached in time) would otherwise be stored, and
 * every later probe of that name would be an update the rule lets by.
 */
export async function webhookRulesInForce(namespace: string, name = "probe"): Promise<void> {
  const probe = {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: { name },
    spec: { fleetRef: { name: "no-such-fleet" } },
  };
  await waitFor(
    `the webhook's rules in force in ${namespace} (${name})`,
    async () => {
      const args = ["apply", "-n", namespace, "-f", "-", "--dry-run=server"];
      const res = await kubectl(args, JSON.stringify(probe));
      if (res.code !== 0 && /does not exist/.test(res.stderr)) return true;
      // Kept as the last error, so a timeout says what the apiserver answered: with
      // failurePolicy Ignore a webhook the apiserver could not reach (or that answered too
      // late under load) shows up as an admitted probe.
      throw new Error(`probe answered (exit ${res.code}): ${(res.stderr || res.stdout).trim()}`);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}
