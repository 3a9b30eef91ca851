// A real local Kubernetes control plane for tests and `make dev`: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler built from their Go modules, and kwok
// standing in for kubelets on fake nodes. Everything listens on free loopback ports and
// lives in one temporary directory; stop() tears it down and removes it unless kept.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFile, mkdtemp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { binary } from "./binaries.ts";
import { repoRoot } from "./paths.ts";
import { freePort, Supervised, waitFor } from "./process.ts";
import { PodReaper } from "./reaper.ts";
import { KubeConfig } from "../../lib/kube/kubeconfig.ts";
import { errorMessage } from "../../lib/log.ts";

export interface ControlPlaneOptions {
  /** Number of fake kwok nodes (default 3, spread over zones a/b/c). */
  nodes?: number;
  /**
   * Sandbox and AgentRuntime pods are backed by real processes (pods.ts): kwok starts them
   * Running but not Ready, and the process's backend marks them Ready once it listens.
   */
  backedPods?: boolean;
  /** Directory to use instead of a fresh temp dir. */
  dir?: string;
  /** Lift the apiserver's and controllers' client limits, as for benchmarks. */
  unthrottled?: boolean;
  /** Print progress lines to stderr. */
  verbose?: boolean;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Extra kube-scheduler flags (e.g. -v=2 to log every binding). */
  schedulerArgs?: string[];
}

export interface Endpoints {
  server: string;
  token: string;
  caFile: string;
  kubeconfig: string;
}

const ADMIN_USER = "agentry-admin";

export class ControlPlane implements Endpoints {
  readonly dir: string;
  readonly server: string;
  readonly token: string;
  readonly caFile: string;
  readonly kubeconfig: string;
  private readonly processes: Supervised[] = [];
  private readonly byName = new Map<string, Supervised>();
  /** The fake kubelets' final deletion of deleted pods (reaper.ts). */
  private reaper: PodReaper | undefined;

  private constructor(dir: string, server: string, token: string) {
    this.dir = dir;
    this.server = server;
    this.token = token;
    this.caFile = join(dir, "pki", "apiserver.crt");
    this.kubeconfig = join(dir, "kubeconfig");
  }

  get logDir(): string {
    return join(this.dir, "logs");
  }

  /**
   * The log every fake pod has (kwok serves it to the apiserver's pod log API, so `kubectl
   * logs` works): lines in the CRI format (`<RFC 3339 time> stdout F <text>`), appended by
   * tests with appendPodLog. One file for all pods: there is no container to write it.
   */
  get podLogFile(): string {
    return podLogFile(this.dir);
  }

  /**
   * Starts every component and returns once the apiserver is ready and every fake node is Ready.
   * A port found free can be taken by another process before the component binds it (test
   * files start control planes side by side): such a start is made again on fresh ports, up
   * to three times in all.
   */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ControlPlane.startOnce(options);
      } catch (err) {
        const { portTaken, dir } = err as { portTaken?: boolean; dir?: string };
        if (portTaken !== true || attempt >= 3 || options.dir) throw err;
        if (options.verbose)
          process.stderr.write(`[controlplane] a port was taken meanwhile; starting again\n`);
        // The cause is known; the failed attempt's directory (its logs, etcd data) goes.
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    }
  }

  private static async startOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
    const started = Date.now();
    const say = (msg: string) => {
      if (options.verbose) process.stderr.write(`[controlplane] ${msg}\n`);
    };
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "agentry-cp-")));
    for (const sub of ["logs", "pki", "etcd"]) await mkdir(join(dir, sub), { recursive: true });
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    const token = randomBytes(24).toString("hex");
    const cp = new ControlPlane(dir, `https://127.0.0.1:${apiPort}`, token);
    try {
      await cp.writeCredentials();
      say(`starting etcd, kube-apiserver on ${cp.server} (dir ${dir})`);
      cp.spawn("etcd", [
        `--name=agentry`,
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=agentry=http://127.0.0.1:${etcdPeer}`,
        `--unsafe-no-fsync=true`,
        `--quota-backend-bytes=${8 * 1024 ** 3}`,
        `--log-level=warn`,
      ]);
      await waitFor("etcd health", () => httpOk(`http://127.0.0.1:${etcdClient}/health`), {
        timeoutMs: 30_000,
      });

      const pki = join(dir, "pki");
      cp.spawn("kube-apiserver", [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        `--bind-address=127.0.0.1`,
        `--advertise-address=127.0.0.1`,
        // Fake nodes have no resolvable hostname: pod logs go to their (loopback) InternalIP.
        `--kubelet-preferred-address-types=InternalIP`,
        `--secure-port=${apiPort}`,
        `--cert-dir=${pki}`,
        `--token-auth-file=${join(pki, "tokens.csv")}`,
        `--authorization-mode=Node,RBAC`,
        `--service-cluster-ip-range=10.96.0.0/16`,
        `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
        `--service-account-key-file=${join(pki, "sa.pub")}`,
        `--service-account-signing-key-file=${join(pki, "sa.key")}`,
        `--endpoint-reconciler-type=none`,
        `--allow-privileged=true`,
        `--profiling=false`,
        ...(options.apiserverArgs ?? []),
        ...(options.unthrottled
          ? [
              `--max-requests-inflight=0`,
              `--max-mutating-requests-inflight=0`,
              `--enable-priority-and-fairness=false`,
            ]
          : []),
      ]);
      await waitFor("kube-apiserver /readyz", () => cp.apiOk("/readyz"), {
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      await cp.writeKubeconfig();

      const qps = options.unthrottled ? [`--kube-api-qps=5000`, `--kube-api-burst=10000`] : [];
      say("starting kube-controller-manager, kube-scheduler, kwok");
      cp.spawn("kube-controller-manager", [
        `--kubeconfig=${cp.kubeconfig}`,
        `--bind-address=127.0.0.1`,
        `--secure-port=${kcmPort}`,
        `--leader-elect=false`,
        `--service-account-private-key-file=${join(pki, "sa.key")}`,
        `--root-ca-file=${cp.caFile}`,
        `--use-service-account-credentials=false`,
        `--cluster-name=agentry-local`,
        ...qps,
      ]);
      cp.spawn("kube-scheduler", [
        `--kubeconfig=${cp.kubeconfig}`,
        `--bind-address=127.0.0.1`,
        `--secure-port=${schedPort}`,
        `--leader-elect=false`,
        ...qps,
        ...(options.schedulerArgs ?? []),
      ]);
      cp.spawn("kwok", [
        `--kubeconfig=${cp.kubeconfig}`,
        `--config=${options.backedPods ? await backedStages(dir) : join(repoRoot, "test", "harness", "kwok-stages.yaml")}`,
        `--manage-all-nodes=false`,
        `--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake`,
        `--manage-nodes-with-label-selector=`,
        `--config=${await podLogsConfig(dir)}`,
        `--server-address=127.0.0.1:${kwokPort}`,
        // The "kubelet" API (pod logs) over TLS with the apiserver's own serving certificate,
        // on the port nodes report: the apiserver dials 127.0.0.1:<kwokPort> for `kubectl logs`.
        `--tls-cert-file=${join(dir, "pki", "apiserver.crt")}`,
        `--tls-private-key-file=${join(dir, "pki", "apiserver.key")}`,
        `--node-port=${kwokPort}`,
        // Node addresses on loopback: the apiserver's calls to a "kubelet" (logs, exec) stay here.
        `--node-ip=127.0.0.1`,
        `--cidr=10.244.0.0/16`,
        `--node-lease-duration-seconds=40`,
      ]);
      await waitFor(
        "kube-controller-manager /healthz",
        () => httpsOk(`https://127.0.0.1:${kcmPort}/healthz`),
        {
          timeoutMs: 60_000,
        },
      );
      await waitFor("kube-scheduler /healthz", () => httpsOk(`https://127.0.0.1:${schedPort}/healthz`), {
        timeoutMs: 60_000,
      });
      await waitFor("kwok /healthz", () => httpsOk(`https://127.0.0.1:${kwokPort}/healthz`), {
        timeoutMs: 30_000,
      });
      cp.reaper = new PodReaper(KubeConfig.fromFiles([cp.kubeconfig]));
      await cp.reaper.start();

      const nodes = options.nodes ?? 3;
      await cp.createFakeNodes(nodes);
      await waitFor(`${nodes} Ready fake nodes`, () => cp.readyNodes().then((n) => n >= nodes), {
        timeoutMs: 60_000,
      });
      await waitFor("default ServiceAccount", () =>
        cp.apiOk("/api/v1/namespaces/default/serviceaccounts/default"),
      );
      say(`ready in ${((Date.now() - started) / 1000).toFixed(1)}s; KUBECONFIG=${cp.kubeconfig}`);
      return cp;
    } catch (err) {
      await cp.stop({ keep: true });
      const msg = errorMessage(err);
      const portTaken = await logsSay(cp.logDir, "address already in use");
      throw Object.assign(
        new Error(`local control plane failed to start: ${msg}\n  logs kept in ${cp.logDir}`, {
          cause: err,
        }),
        { portTaken, dir: cp.dir },
      );
    }
  }

  /** Stops every component (reverse start order) and removes the directory unless `keep`. */
  async stop({ keep = false }: { keep?: boolean } = {}): Promise<void> {
    await this.reaper?.stop();
    for (const p of [...this.processes].reverse()) await p.stop();
    if (!keep) await rm(this.dir, { recursive: true, force: true });
  }

  /** The supervised process of one component, e.g. to kill or restart it in a chaos test. */
  component(name: string): Supervised {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no component ${name}`);
    return p;
  }

  /** Starts a component again after it was stopped, with the same arguments. */
  restart(name: string): void {
    this.component(name).start();
  }

  /** Waits until the apiserver answers /readyz again (after a restart). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor("kube-apiserver /readyz", () => this.apiOk("/readyz"), { timeoutMs, intervalMs: 250 });
  }

  /** GET against the apiserver as the admin; resolves to the parsed JSON body. */
  async api<T = unknown>(path: string): Promise<T> {
    return JSON.parse(await this.apiText(path)) as T;
  }

  private async apiText(path: string): Promise<string> {
    const ca = await readFile(this.caFile);
    const { status, body } = await httpsGet(`${this.server}${path}`, { ca, token: this.token });
    if (status !== 200) throw new Error(`GET ${path}: HTTP ${status}: ${body.slice(0, 200)}`);
    return body;
  }

  /** Resolves true when GET path answers 200; rejects with the reason otherwise. */
  private async apiOk(path: string): Promise<boolean> {
    await this.apiText(path);
    return true;
  }

  private spawn(name: string, args: string[]): void {
    const p = new Supervised(name, binary(name as Parameters<typeof binary>[0]), args, this.logDir);
    p.start();
    this.processes.push(p);
    this.byName.set(name, p);
  }

  private async writeCredentials(): Promise<void> {
    const pki = join(this.dir, "pki");
    const { publicKey, privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    await writeFile(join(pki, "sa.pub"), publicKey, { mode: 0o600 });
    await writeFile(join(pki, "sa.key"), privateKey, { mode: 0o600 });
    // token,user,uid,"groups": the admin is a member of system:masters.
    await writeFile(join(pki, "tokens.csv"), `${this.token},${ADMIN_USER},${ADMIN_USER},"system:masters"\n`, {
      mode: 0o600,
    });
  }

  private async writeKubeconfig(): Promise<void> {
    const ca = await readFile(this.caFile);
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "agentry-local",
          cluster: { server: this.server, "certificate-authority-data": ca.toString("base64") },
        },
      ],
      users: [{ name: ADMIN_USER, user: { token: this.token } }],
      contexts: [{ name: "agentry-local", context: { cluster: "agentry-local", user: ADMIN_USER } }],
      "current-context": "agentry-local",
    };
    await writeFile(this.kubeconfig, yaml.dump(config), { mode: 0o600 });
  }

  private async createFakeNodes(count: number): Promise<void> {
    const ca = await readFile(this.caFile);
    const zones = ["a", "b", "c"];
    for (let i = 0; i < count; i++) {
      const name = `kwok-node-${i}`;
      const node = {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name,
          annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
          labels: {
            type: "kwok",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": `zone-${zones[i % zones.length]}`,
          },
        },
      };
      const res = await httpsRequest("POST", `${this.server}/api/v1/nodes`, {
        ca,
        token: this.token,
        body: JSON.stringify(node),
      });
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`creating node ${name}: HTTP ${res.status}`);
    }
  }

  private async readyNodes(): Promise<number> {
    type NodeList = { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
    const list = await this.api<NodeList>("/api/v1/nodes");
    return list.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    ).length;
  }
}

interface RequestOptions {
  ca?: Buffer;
  token?: string;
  body?: string;
  insecure?: boolean;
}

function httpsRequest(
  method: string,
  url: string,
  { ca, token, body, insecure }: RequestOptions,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        rejectUnauthorized: !insecure,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { "content-type": "application/json" } : {}),
        },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on("error", reject);
    req.end(body);
  });
}

function httpsGet(url: string, options: RequestOptions) {
  return httpsRequest("GET", url, options);
}

async function httpsOk(url: string): Promise<boolean> {
  const { status } = await httpsGet(url, { insecure: true });
  return status === 200;
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return res.ok;
}

/** Labels of the pods that pods.ts backs with a process. */
const BACKED_LABELS = ["agentry.dev/sandbox-fleet", "agentry.dev/agent-runtime"];

/**
 * kwok-stages.yaml with one change: backed pods start Running but not Ready (their process
 * is not listening yet); every other pod behaves as usual. Written into `dir`.
 */
async function backedStages(dir: string): Promise<string> {
  const text = await readFile(join(repoRoot, "test", "harness", "kwok-stages.yaml"), "utf8");
  type Stage = {
    metadata: { name: string };
    spec: {
      selector: { matchExpressions: { key: string; operator: string; values?: string[] }[] };
      next: { statusTemplate: string };
    };
  };
  const stages = yaml.loadAll(text) as Stage[];
  const running = stages.find((s) => s.metadata.name === "agentry-pod-running");
  if (!running) throw new Error("kwok-stages.yaml has no agentry-pod-running stage");
  const backed = structuredClone(running);
  backed.metadata.name = "agentry-pod-running-backed";
  for (const label of BACKED_LABELS)
    running.spec.selector.matchExpressions.push({
      key: `.metadata.labels["${label}"]`,
      operator: "DoesNotExist",
    });
  // Either label makes a pod backed: one stage per label, the second excluding the first.
  const [first, second] = BACKED_LABELS as [string, string];
  const second$ = structuredClone(backed);
  backed.metadata.name += "-1";
  backed.spec.selector.matchExpressions.push({ key: `.metadata.labels["${first}"]`, operator: "Exists" });
  second$.metadata.name += "-2";
  second$.spec.selector.matchExpressions.push(
    { key: `.metadata.labels["${first}"]`, operator: "DoesNotExist" },
    { key: `.metadata.labels["${second}"]`, operator: "Exists" },
  );
  const notReady = (type: string) =>
    `- type: ${type}\n  status: "False"\n  reason: ContainersNotReady\n  lastTransitionTime: {{ $now | Quote }}\n`;
  for (const st of [backed, second$]) {
    const template = st.spec.next.statusTemplate;
    const edited = template
      .replace(
        '{{ range list "PodScheduled" "Initialized" "ContainersReady" "Ready" }}',
        '{{ range list "PodScheduled" "Initialized" }}',
      )
      .replace("conditions:\n", `conditions:\n${notReady("ContainersReady")}${notReady("Ready")}`)
      .replace("ready: true", "ready: false");
    if (edited.split("ready: false").length !== 2 || !edited.includes('"Initialized" }}'))
      throw new Error("kwok-stages.yaml's agentry-pod-running stage changed: update backedStages()");
    st.spec.next.statusTemplate = edited;
  }
  const file = join(dir, "kwok-stages-backed.yaml");
  await writeFile(
    file,
    stages
      .concat([backed, second$])
      .map((s) => yaml.dump(s))
      .join("---\n"),
  );
  return file;
}

/** The fake pods' shared log file of the control plane in `dir`. */
export function podLogFile(dir: string): string {
  return join(dir, "pod-logs.log");
}

/** A kwok ClusterLogs for every pod, from podLogFile (followed as it grows). */
async function podLogsConfig(dir: string): Promise<string> {
  const file = podLogFile(dir);
  await writeFile(file, "", { flag: "a" });
  const config = join(dir, "kwok-pod-logs.yaml");
  await writeFile(
    config,
    [
      "apiVersion: kwok.x-k8s.io/v1alpha1",
      "kind: ClusterLogs",
      "metadata:",
      "  name: agentry-pod-logs",
      "spec:",
      "  logs:",
      `    - logsFile: ${JSON.stringify(file)}`,
      "      follow: true",
      "",
    ].join("\n"),
  );
  return config;
}

/** Appends lines to the fake pods' log (the control plane's, from AGENTRY_CONTROLPLANE_DIR by default). */
export async function appendPodLog(
  lines: string[],
  dir = process.env.AGENTRY_CONTROLPLANE_DIR,
): Promise<void> {
  if (!dir) throw new Error("no control plane: AGENTRY_CONTROLPLANE_DIR is not set");
  const now = new Date().toISOString().replace("Z", "000000Z");
  await appendFile(podLogFile(dir), lines.map((l) => `${now} stdout F ${l}\n`).join(""));
}

/** Whether any component's log in `dir` has `text`. */
async function logsSay(dir: string, text: string): Promise<boolean> {
  const files = await readdir(dir).catch(() => [] as string[]);
  for (const f of files)
    if ((await readFile(join(dir, f), "utf8").catch(() => "")).includes(text)) return true;
  return false;
}
