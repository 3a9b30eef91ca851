// The bring-up behind `make dev`, as a function the tests run too: a cluster (the local
// control plane, or a given kubeconfig's), the agentry CRDs, the operator, the gateway and
// (local control plane only) the admission webhook as processes, real sandbox and agent
// runtime processes behind the fake pods (pods.ts), a volume provisioner (volumes.ts), (local
// control plane, when built) a SeaweedFS S3 server as the operator's default object store, so
// workspaces are durable, and optionally examples/ applied. Everything it starts listens on loopback, and everything the
// operator dials goes through the pod address map. stop() ends all of it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { controlPlaneBinDir } from "./binaries.ts";
import { ControlPlane } from "./controlplane.ts";
import { installCrds } from "./install.ts";
import { judgeAll, type KStatus } from "./kstatus.ts";
import { repoRoot } from "./paths.ts";
import { PodBackends } from "./pods.ts";
import { startGitServer, type GitServer } from "./git.ts";
import { startS3, weedBinary, type S3Server } from "./s3.ts";
import { freePort, stopProcess, waitFor } from "./process.ts";
import { LocalVolumes } from "./volumes.ts";
import { buildConsole } from "../../hack/console.ts";

export interface PlatformOptions {
  /** Working directory: logs, kubeconfig copy, tokens, volumes, sandbox roots. */
  dir: string;
  /** Use this cluster instead of starting the local control plane. */
  kubeconfig?: string;
  /** Ports on 127.0.0.1; 0 (the default) picks free ones. make dev asks for 8081/8080/9443. */
  ports?: { operator?: number; gateway?: number; gatewayMetrics?: number; webhook?: number };
  /** Apply examples/ (recursively) into this namespace. */
  examplesNamespace?: string;
  /** Progress lines for a person (make dev); silent when omitted. */
  say?: (line: string) => void;
  /** Forwarded to PodBackends: keep the pods' model providers, with this key. */
  modelApiKey?: string;
}

export interface Platform {
  kubeconfig: string;
  /** The local control plane, when this bring-up started one. */
  cp?: ControlPlane;
  binDir: string;
  /** Bearer token for the gateway (user dev-admin, group system:masters). */
  token: string;
  operatorUrl: string;
  gatewayUrl: string;
  /** The gateway's /metrics, on its metrics port. */
  gatewayMetricsUrl: string;
  webhookUrl?: string;
  /** The processes behind the fake pods (local control plane only). */
  pods?: PodBackends;
  /** The default object store (local control plane with SeaweedFS built only). */
  s3?: S3Server;
  /** Names and exit codes of programs that exited while the platform ran. */
  exited: { name: string; code: number | null }[];
  kubectl(args: string[]): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const say = options.say ?? (() => undefined);
  const dir = options.dir;
  await mkdir(dir, { recursive: true });
  const binDir = controlPlaneBinDir();
  const children: { name: string; child: ChildProcess }[] = [];
  const exited: { name: string; code: number | null }[] = [];
  let stopping = false;
  let cp: ControlPlane | undefined;
  let pods: PodBackends | undefined;
  let volumes: LocalVolumes | undefined;
  let git: GitServer | undefined;
  let s3: S3Server | undefined;

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // The sandboxes flush on SIGTERM through the operator's broker into the store: both stay until then.
    await pods?.stop();
    await volumes?.stop();
    await git?.stop();
    await Promise.all(children.map(({ child }) => stopProcess(child, 30_000)));
    await s3?.stop({ keep: true });
    await cp?.stop();
  };

  try {
    let kubeconfig = options.kubeconfig ?? "";
    if (!kubeconfig) {
      say("starting the local control plane ...");
      cp = await ControlPlane.start({ verbose: options.say !== undefined, backedPods: true });
      kubeconfig = join(dir, "kubeconfig");
      await copyFile(cp.kubeconfig, kubeconfig);
    }
    const env = { ...process.env, KUBECONFIG: kubeconfig };
    const kubectl = (args: string[], input?: string) => {
      const res = spawnSync(join(binDir, "kubectl"), args, { env, encoding: "utf8", input });
      return { status: res.status, stdout: res.stdout ?? "", stderr: res.stderr ?? "" };
    };
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);

    say("installing the agentry CRDs ...");
    installCrds(kubeconfig);

    // The fake pods' processes and volumes come first: the operator reads their map.
    volumes = LocalVolumes.start({ dir: join(dir, "volumes"), kubeConfig: kc });
    pods = await PodBackends.start({
      dir: join(dir, "pods"),
      kubeConfig: kc,
      modelApiKey: options.modelApiKey,
    });

    const port = async (p: number | undefined) => (p ? p : freePort());
    const ports = {
      operator: await port(options.ports?.operator),
      gateway: await port(options.ports?.gateway),
      gatewayMetrics: await port(options.ports?.gatewayMetrics),
      webhook: await port(options.ports?.webhook),
    };
    const start = (name: string, entry: string, args: string[]) => {
      const log = join(dir, `${name}.log`);
      const out = createWriteStream(log, { flags: "a" });
      const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, entry), ...args], {
        cwd: repoRoot,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      child.once("exit", (code) => {
        exited.push({ name, code });
        if (!stopping) say(`${name} exited with code ${code}; see ${log}`);
      });
      children.push({ name, child });
      say(`started ${name} (logs: ${log})`);
    };

    // The default object store, on the local control plane: SeaweedFS on loopback, its
    // credentials in a Secret of the operator's (lease) namespace, where the gateway's keys
    // are too; the sandboxes reach the operator's store broker on loopback.
    if (cp) kubectl(["create", "namespace", SYSTEM_NAMESPACE]);
    const weed = cp ? weedBinary() : undefined;
    if (cp && !weed)
      say("SeaweedFS is not built (make fetch): workspaces are not durable (Durable=False, NoStore)");
    const storeArgs: string[] = [];
    if (weed) {
      say("starting SeaweedFS (S3 on loopback) as the default object store ...");
      s3 = await startS3({ dir: join(dir, "s3"), weed });
      await s3.createBucket(DEV_BUCKET);
      const secret = kubectl(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: DEV_STORE_SECRET, namespace: OPERATOR_NAMESPACE },
          stringData: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        }),
      );
      if (secret.status !== 0) throw new Error(`could not create the store's Secret: ${secret.stderr}`);
      const brokerPort = await freePort();
      storeArgs.push(
        `--default-store-endpoint=${s3.endpoint}`,
        `--default-store-bucket=${DEV_BUCKET}`,
        "--default-store-prefix=dev",
        `--default-store-secret=${DEV_STORE_SECRET}`,
        `--broker-addr=127.0.0.1:${brokerPort}`,
        `--broker-url=http://127.0.0.1:${brokerPort}`,
      );
    }
    start("operator", "operator/main.ts", [
      "--leader-elect=false",
      `--health-addr=127.0.0.1:${ports.operator}`,
      ...(pods ? [`--pod-address-map=${pods.mapFile}`] : []),
      ...storeArgs,
      "--log-level=debug",
    ]);

    // The gateway, with one bearer token for this session (only its sha256 is written down).
    const token = randomBytes(24).toString("hex");
    const tokensFile = join(dir, "gateway-tokens.yaml");
    const sha256 = createHash("sha256").update(token).digest("hex");
    await writeFile(tokensFile, yaml.dump([{ sha256, user: "dev-admin", groups: ["system:masters"] }]), {
      mode: 0o600,
    });
    // The web console, built for this bring-up and served by the gateway under /ui.
    const consoleDir = (await buildConsole(join(dir, "console"))).dir;
    start("gateway", "gateway/main.ts", [
      `--listen=127.0.0.1:${ports.gateway}`,
      `--metrics-addr=127.0.0.1:${ports.gatewayMetrics}`,
      `--console-dir=${consoleDir}`,
      `--tokens-file=${tokensFile}`,
      ...(pods ? [`--pod-address-map=${pods.mapFile}`] : []),
      "--shutdown-delay=0s", // Ctrl-C: no load balancer to wait for
    ]);

    // The admission webhook only for the local control plane: a remote apiserver could not
    // call back to this machine. Its own namespace (holding its CA Secret) is not admitted.
    let webhookUrl: string | undefined;
    if (cp) {
      webhookUrl = `https://127.0.0.1:${ports.webhook}`;
      start("webhook", "webhook/main.ts", [
        `--listen=127.0.0.1:${ports.webhook}`,
        `--webhook-url=${webhookUrl}`,
        "--cert-hosts=127.0.0.1",
        `--namespace=${SYSTEM_NAMESPACE}`,
        "--cert-secret-name=agentry-dev-webhook-tls",
      ]);
    }
    const operatorUrl = `http://127.0.0.1:${ports.operator}`;
    const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
    await waitFor(
      "operator and gateway to be ready",
      async () => {
        const dead = exited[0];
        if (dead)
          throw new Error(`${dead.name} exited with code ${dead.code}; see ${join(dir, `${dead.name}.log`)}`);
        const oks = await Promise.all(
          [`${operatorUrl}/readyz`, `${gatewayUrl}/readyz`].map((u) =>
            fetch(u)
              .then((r) => r.ok)
              .catch(() => false),
          ),
        );
        return oks.every(Boolean);
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );

    if (options.examplesNamespace) {
      const namespace = options.examplesNamespace;
      // The examples' git sources (git.example.com) are served by a real git server on
      // loopback, with the repositories and refs they name; nothing leaves the machine.
      const gitServer = await startExampleGit();
      git = gitServer;
      const examplesText = examplesYaml(gitServer.url);
      say(`applying examples/ into namespace ${namespace} (git sources from ${gitServer.url}) ...`);
      kubectl(["create", "namespace", namespace]);
      // The webhook may still be publishing its CA to the apiserver: retry until admitted.
      await waitFor(
        "examples admitted",
        () => {
          const res = kubectl(["apply", "-n", namespace, "-f", "-"], examplesText);
          if (res.status !== 0) throw new Error(res.stderr.trim());
          say(res.stdout.trimEnd());
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
    }
    return {
      kubeconfig,
      cp,
      binDir,
      token,
      operatorUrl,
      gatewayUrl,
      gatewayMetricsUrl: `http://127.0.0.1:${ports.gatewayMetrics}/metrics`,
      webhookUrl,
      pods,
      ...(s3 ? { s3 } : {}),
      exited,
      kubectl: (args) => kubectl(args),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The webhook's own namespace (its CA Secret), which it does not admit. */
const SYSTEM_NAMESPACE = "agentry-system";
/** The operator's lease namespace (its default): the default store's Secret lives there. */
const OPERATOR_NAMESPACE = "default";
const DEV_BUCKET = "agentry-dev";
const DEV_STORE_SECRET = "agentry-dev-store";

/** A git server on loopback holding the repositories and refs the examples' sources name. */
export async function startExampleGit(): Promise<GitServer> {
  const server = await startGitServer();
  try {
    await server.createRepo("alice/notebook", [{ files: { "README.md": "# notebook\n" } }]);
    await server.createRepo("alice/app", [{ files: { "README.md": "# app\n", "main.py": "print('hi')\n" } }]);
    await server.createRepo("bob/service", [
      { files: { "README.md": "# service v2.0\n" }, tag: "v2.0.0" },
      { files: { "README.md": "# service v2.1\n" }, tag: "v2.1.0" },
    ]);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/**
 * The examples (every file under examples/, or under `sub` of it) as one YAML stream, their
 * git sources (https://git.example.com/...) pointing at the git server `gitUrl` instead.
 */
export function examplesYaml(gitUrl: string, sub = ""): string {
  return exampleFiles(join(repoRoot, "examples", sub))
    .map((f) => readFileSync(f, "utf8").replaceAll("https://git.example.com/", `${gitUrl}/`))
    .join("\n---\n");
}

/** The YAML files under `dir`, recursively, in name order (what `kubectl apply -R -f` takes). */
function exampleFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

const KINDS = ["agentruntimes", "sandboxfleets", "workspaces", "pipelines"] as const;

export interface ObjectState {
  kind: string;
  name: string;
  status: KStatus;
  why?: string;
}

/** Every agentry object in a namespace, judged as kstatus would. */
export async function agentryObjects(kubeconfig: string, namespace: string): Promise<ObjectState[]> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const items: { kind: string; metadata: { name: string } }[] = [];
  for (const plural of KINDS) {
    const list = (await custom.listNamespacedCustomObject({
      group: "agentry.dev",
      version: "v1alpha1",
      namespace,
      plural,
    })) as { items: { kind: string; metadata: { name: string } }[] };
    items.push(...list.items);
  }
  // One kstatus run for the whole namespace, not one per object.
  const judged = judgeAll(items);
  return items.map((item, i) => ({ kind: item.kind, name: item.metadata.name, ...judged[i]! }));
}

/** Waits until every agentry object in the namespace is Current; the last states either way. */
export async function waitForCurrent(
  kubeconfig: string,
  namespace: string,
  timeoutMs: number,
): Promise<{ ok: boolean; objects: ObjectState[] }> {
  const deadline = Date.now() + timeoutMs;
  let objects: ObjectState[] = [];
  for (;;) {
    objects = await agentryObjects(kubeconfig, namespace).catch(() => objects);
    const ok = objects.length > 0 && objects.every((o) => o.status === "Current");
    if (ok || Date.now() > deadline) return { ok, objects };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
