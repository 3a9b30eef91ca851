// What the durability cluster tests share: a test namespace with a real S3 server (SeaweedFS)
// and its credentials Secret, real sandbox processes behind kwok's pods, the operator, and
// helpers to read a Workspace, wait for it to be Ready and Durable, and call its sandbox.
import * as k8s from "@kubernetes/client-node";
import { Audience } from "../../contracts/tokens.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import { api, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";
import { startS3, weedBinary, type S3Server } from "../harness/s3.ts";

/** Why the suite is skipped (SeaweedFS not built); in CI a missing build is an error. */
export function s3Missing(): string | false {
  const missing = !weedBinary();
  if (missing && process.env.CI === "true")
    throw new Error("SeaweedFS is not built: `make fetch` builds it (CI=true)");
  return missing && "SeaweedFS not built (make fetch)";
}

export type Cond = { type: string; status: string; reason?: string; message?: string };
export type Ws = {
  metadata: { annotations?: Record<string, string> };
  status?: {
    phase?: string;
    sandboxPod?: string;
    lastFlushTime?: string;
    bytes?: number;
    sourceCommit?: string;
    conditions?: Cond[];
  };
};

export const cond = (w: Ws, type: string) => w.status?.conditions?.find((c) => c.type === type);

type Suite = { after: (fn: () => Promise<void>) => void };

export interface DurableEnv {
  ns: string;
  s3: S3Server;
  pods: PodBackends;
  operator: OperatorProcess;
  /** spec.objectStore of a fleet on this env's store, under `prefix`. */
  store(prefix: string): Record<string, unknown>;
  getWs(name: string): Promise<Ws>;
  /** Merge-patches the object's spec. */
  patchSpec(plural: string, name: string, spec: Record<string, unknown>): Promise<unknown>;
  /** Ready and Durable (its first flush done) on a sandbox other than `not` (any, when omitted). */
  readyOn(name: string, not?: string): Promise<Ws>;
  /** Waits until the workspace's last completed flush holds at least `bytes` bytes (Durable=True). */
  flushedBytes(name: string, bytes: number): Promise<Ws>;
  /** A client of the workspace's sandbox, with a token for the workspace. */
  sandboxOf(name: string): Promise<{ client: SandboxClient; pod: string; id: string }>;
  /** Kills the operator with SIGKILL and starts another in its place (same broker URL). */
  restartOperator(signal?: NodeJS.Signals): Promise<void>;
}

/** Fast leader election, so an operator started after a kill takes over within seconds. */
const LEASE = ["--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];

/**
 * A real S3 server with `bucket`, its credentials in Secret "store" of `ns`, and the
 * spec.objectStore a fleet there names it by (under `prefix`).
 */
export async function startStore(
  suite: Suite,
  ns: string,
  bucket: string,
): Promise<{ s3: S3Server; store: (prefix: string) => Record<string, unknown> }> {
  const s3 = await startS3();
  suite.after(() => s3.stop());
  await s3.createBucket(bucket);
  await api(k8s.CoreV1Api).createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: "store" },
      stringData: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    },
  });
  return {
    s3,
    store: (prefix) => ({ endpoint: s3.endpoint, bucket, prefix, credentialsSecret: { name: "store" } }),
  };
}

export async function startDurableEnv(suite: Suite & { name: string }, bucket: string): Promise<DurableEnv> {
  const ns = await testNamespace(suite);
  const { s3, store } = await startStore(suite, ns, bucket);
  const pods = await PodBackends.start({ namespaces: [ns], kinds: ["sandbox"] });
  suite.after(() => pods.stop());
  const options = { namespaces: [ns], podAddressMap: pods.mapFile, args: LEASE };
  const custom = () => api(k8s.CustomObjectsApi);
  const ref = (plural: string, name: string) => ({
    group: "agentry.dev",
    version: "v1alpha1",
    plural,
    namespace: ns,
    name,
  });
  const getWs = async (name: string) =>
    (await custom().getNamespacedCustomObject(ref("workspaces", name))) as Ws;
  const env: DurableEnv = {
    ns,
    s3,
    pods,
    operator: await startOperator(suite, options),
    store,
    getWs,
    patchSpec: (plural, name, spec) =>
      custom().patchNamespacedCustomObject(
        { ...ref(plural, name), body: { spec } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      ),
    readyOn: (name, not) =>
      waitFor(
        `workspace ${name} Ready and Durable${not ? ` on a sandbox other than ${not}` : ""}`,
        async () => {
          const w = await getWs(name);
          const pod = w.status?.sandboxPod;
          return w.status?.phase === "Ready" && cond(w, "Durable")?.status === "True" && pod && pod !== not
            ? w
            : undefined;
        },
        { timeoutMs: 120_000 },
      ),
    flushedBytes: (name, bytes) =>
      waitFor(
        `workspace ${name} flushed with ${bytes} bytes or more`,
        async () => {
          const w = await getWs(name);
          return (w.status?.bytes ?? 0) >= bytes && cond(w, "Durable")?.status === "True" ? w : undefined;
        },
        { timeoutMs: 60_000 },
      ),
    async sandboxOf(name) {
      const w = await getWs(name);
      const pod = w.status!.sandboxPod!;
      const id = `${ns}.${name}`;
      const client = new SandboxClient({
        baseUrl: `http://${pods.addressOf(ns, pod)!}`,
        token: () => pods.token(Audience.workspace(id), ["files", "exec"]),
      });
      return { client, pod, id };
    },
    async restartOperator(signal = "SIGKILL") {
      await env.operator.kill(signal);
      env.operator = await startOperator(suite, { ...options, brokerPort: env.operator.brokerPort });
    },
  };
  return env;
}
