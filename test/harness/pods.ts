// Real processes behind kwok's fake pods, on loopback: the one mechanism by which `make dev`,
// the tests and the benchmarks let the operator talk to "pods" without leaving the machine.
//
// For every sandbox pod (label agentry.dev/sandbox-fleet) a sandbox runtime process, and for
// every AgentRuntime pod (label agentry.dev/agent-runtime) an agent runtime process, each on
// a free 127.0.0.1 port, started when the pod runs and stopped when it goes. Their addresses
// are written to a map file ({"namespace/pod": "127.0.0.1:port"}) that the operator reads
// with --pod-address-map: a pod not in the map is never dialled (see PodAddresses).
//
// Like a kubelet, a process that fails to start or exits is restarted with backoff, and the
// pod shows it: Ready=False, the container waiting in CrashLoopBackOff with the process's
// last words as message, and a BackOff Event (`kubectl describe pod`). Once the process
// listens again the pod is Ready again.
//
// Like a kubelet, it terminates gracefully: a pod it backs carries the annotation
// kwok.agentry.dev/graceful, which makes kwok wait for the pod's grace period before it
// removes a deleted pod (kwok-stages.yaml); meanwhile its process gets SIGTERM (SIGKILL once
// the grace period is over) and, once the process has exited, the harness removes the pod
// itself (delete with grace 0, as a kubelet does). So a process finishes its shutdown work
// (a sandbox flushes its workspaces through the operator's broker) while its pod still exists.
//
// Like a kubelet, it gives each process what its pod spec asks for: the first container's
// env with plain values and the downward API (fieldRef metadata.name, metadata.namespace,
// metadata.uid, status.podIP) resolved, and its ConfigMap and Secret volumes written into a
// directory per pod (items and all; refreshed every second, as a kubelet refreshes mounted
// ConfigMaps and Secrets), with every env value that names a mount path pointed at that
// directory: so the trust bundle (AGENTRY_TRUST_DIR) and the tokens a pod sends reach the
// process. A pod whose ConfigMap, Secret or key does not exist yet waits, as with a kubelet.
//
// An agent process gets the pod's own environment, except: the model provider is `echo`
// unless `modelApiKey` is given; AGENTRY_WORKSPACE_URL's pod IP is translated to the sandbox
// process's loopback address; and a PersistentVolumeClaim mounted by the pod is its working
// directory and AGENTRY_DATA_DIR (the PV's hostPath, see volumes.ts).
//
// With `runtime: "container"` each pod is backed instead by a real container of agentry's
// own image of its kind (the test images of containers.ts; the pod's image name is not
// pulled), run with podman as the kubelet would run the pod's container: its user,
// read-only root, capabilities, no new privileges, env, resource limits, and its volumes as
// host directories (emptyDirs under the working directory, a claim's PersistentVolume at its
// hostPath, mounted where the pod mounts it). Only the listen address differs (127.0.0.1,
// port 0, host networking), and the same env exceptions apply as for processes.
// ConfigMap and Secret volumes are written the same way and mounted where the pod mounts
// them.
//
// Test seam: the harness has a signing key of its own, and its public key is added to every
// process's trust directory (what `kubectl exec` is to a real pod: the cluster admin's way
// in). It signs the harness's own calls (setLoad, workspacesOn) and `token()` for tests and
// `make dev`. A test can also stand a server of its own behind a pod (`stand`) instead of a
// runtime process.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as k8s from "@kubernetes/client-node";
import { Audience, TRUST_DIR_ENV, type TokenScope } from "../../contracts/tokens.ts";
import { imageId, podman, podRunOptions, runArgs } from "./containers.ts";
import { repoRoot } from "./paths.ts";
import { stopProcess, waitFor } from "./process.ts";
import { testTrust, type TestTrust } from "./tokens.ts";
import { errorMessage } from "../../lib/log.ts";

export type BackedKind = "sandbox" | "agent";
/** What backs a pod: a process of the sources (tsx), or a container of agentry's image. */
export type BackingRuntime = "process" | "container";

export interface PodBackendsOptions {
  /** Namespaces to watch; all when omitted. */
  namespaces?: string[];
  /** Which pods to back (default both kinds). */
  kinds?: BackedKind[];
  /** Cluster to watch; the default KUBECONFIG when omitted. */
  kubeConfig?: k8s.KubeConfig;
  /** Working directory (map file, sandbox roots, logs); a temp dir (removed on stop) when omitted. */
  dir?: string;
  /** Sandboxes report a calm load (cpu/memory 0.05) unless a test pins another (default true). */
  calmLoad?: boolean;
  /** With a key, agents keep the pod's model provider and use this key; else they use `echo`. */
  modelApiKey?: string;
  /** How often the pods are listed (default 250 ms). */
  intervalMs?: number;
  /** Processes (default) or containers (podman; needs `make test-images`). */
  runtime?: BackingRuntime;
}

interface Backend {
  key: string;
  uid: string;
  kind: BackedKind;
  /** The AgentRuntime an agent pod is of (its label): its Pods are named after their template. */
  agent?: string;
  child?: ChildProcess;
  /** The container's name, when a container backs the pod. */
  container?: string;
  /** Seconds between SIGTERM and SIGKILL when the pod goes (containers). */
  graceSeconds: number;
  address?: string;
  /** pid while running, for tests that look at the process. */
  pid?: number;
  restarts: number;
  nextStartAt: number;
  lastWords: string[];
  /** The pod was marked not ready by us and must be marked ready again. */
  markedFailing: boolean;
  /** Since when the process waits for something outside it (a bound claim, its sandbox). */
  waitingSince?: number;
  /** The pod's ConfigMap and Secret volumes, written into directories of their own. */
  mounts?: Mount[];
  /** The directory that holds the pod's trust bundle (gets the harness's key too). */
  trustDir?: string;
  lastRefresh?: number;
  starting: boolean;
  stopped: boolean;
  log: WriteStream;
}

type Pod = k8s.V1Pod;

/**
 * A ConfigMap or Secret volume, or a projected ServiceAccount token, as the process sees it:
 * the files, in `dir`.
 */
interface Mount {
  volume: string;
  mountPath: string;
  dir: string;
  kind: "ConfigMap" | "Secret" | "ServiceAccountToken";
  name: string;
  items?: { key: string; path: string }[];
  optional: boolean;
  /** A projected token: its audience, lifetime and file, and the last one requested. */
  token?: {
    audience: string;
    expirationSeconds: number;
    path: string;
    pod: string;
    uid: string;
    value?: string;
    at?: number;
  };
}
const LABEL_FLEET = "agentry.dev/sandbox-fleet";
const LABEL_AGENT = "agentry.dev/agent-runtime";
const MAX_BACKOFF_MS = 30_000;

const agentOf = (pod: k8s.V1Pod): { agent?: string } => {
  const agent = pod.metadata?.labels?.[LABEL_AGENT];
  return agent ? { agent } : {};
};

export class PodBackends {
  readonly mapFile: string;
  readonly dir: string;
  private readonly ownDir: boolean;
  private readonly options: PodBackendsOptions;
  private readonly core: k8s.CoreV1Api;
  private readonly backends = new Map<string, Backend>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private lastMap = "";
  private writing: Promise<void> = Promise.resolve();
  /** Processes being started (stop() waits for them, so none starts or writes after it). */
  private readonly launches = new Set<Promise<void>>();
  /** Servers a test stands behind pods instead of runtime processes, by "namespace/pod". */
  private readonly stands = new Map<string, { address: string; ready: boolean }>();
  /** The same behind AgentRuntimes' pods, by "namespace/agent". */
  private readonly agentStands = new Map<string, { address: string; ready: boolean }>();
  private trust!: TestTrust;
  /** Terminating pods being stopped (SIGTERM, grace, then the pod removed), by uid. */
  private readonly terminating = new Map<string, Promise<void>>();
  /** Errors of the last sync (listing pods), for a caller that wonders why nothing starts. */
  lastError: string | undefined;

  private constructor(dir: string, ownDir: boolean, options: PodBackendsOptions) {
    this.dir = dir;
    this.ownDir = ownDir;
    this.options = options;
    this.mapFile = join(dir, "pod-addresses.json");
    const kc = options.kubeConfig ?? defaultKubeConfig();
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  static async start(options: PodBackendsOptions = {}): Promise<PodBackends> {
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "agentry-pods-")));
    await mkdir(join(dir, "logs"), { recursive: true });
    const b = new PodBackends(dir, !options.dir, options);
    await mkdir(join(dir, "harness-key"), { recursive: true });
    b.trust = await testTrust("agentry-operator", join(dir, "harness-key"));
    await writeFile(b.mapFile, "{}");
    // One sync at a time, and none queued behind it: on a loaded machine a sync can take longer
    // than the interval, and chaining every tick piled up a backlog that stop() then had to
    // work through (minutes after a long suite).
    let busy = false;
    b.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      b.syncing = b
        .sync()
        .catch((err: unknown) => void (b.lastError = String(err)))
        .finally(() => (busy = false));
    }, options.intervalMs ?? 250);
    return b;
  }

  /** host:port of the process behind a pod, once it listens. */
  addressOf(namespace: string, pod: string): string | undefined {
    return this.backends.get(`${namespace}/${pod}`)?.address;
  }

  /**
   * host:port of the process behind AgentRuntime `agent`'s pod, once it listens (its Pods are
   * named after their template; during a replacement, the newest pod's that listens).
   */
  agentAddressOf(namespace: string, agent: string): string | undefined {
    return [...this.backends.values()]
      .filter((b) => b.agent === agent && b.key.startsWith(`${namespace}/`) && b.address)
      .at(-1)?.address;
  }

  /** pid of the process behind a pod while it runs (with containers: podman's own process). */
  pidOf(namespace: string, pod: string): number | undefined {
    return this.backends.get(`${namespace}/${pod}`)?.pid;
  }

  /** Name of the container behind a pod once it listens (runtime "container"). */
  containerOf(namespace: string, pod: string): string | undefined {
    const b = this.backends.get(`${namespace}/${pod}`);
    return b?.child && b.address ? b.container : undefined;
  }

  /** Every address in the map, for assertions that all of them are loopback. */
  addresses(): string[] {
    return [...this.backends.values()].flatMap((b) => (b.address ? [b.address] : []));
  }

  /** A token signed by the harness's key, which every backed process trusts. */
  token(aud: string, scope: readonly TokenScope[], ttlSeconds?: number): Promise<string> {
    return this.trust.token(aud, scope, ttlSeconds ? { ttlSeconds } : {});
  }

  /**
   * Puts `address` (a server of the test's, on loopback) behind the pod instead of a runtime
   * process: it goes into the address map and the pod is marked ready (or, with `ready:
   * false`, running but not ready, as when its readiness probe fails).
   */
  stand(namespace: string, pod: string, address: string, options: { ready?: boolean } = {}): void {
    this.stands.set(`${namespace}/${pod}`, { address, ready: options.ready ?? true });
  }

  /** As stand(), behind every pod of AgentRuntime `agent` (whatever its template's name). */
  standAgent(namespace: string, agent: string, address: string, options: { ready?: boolean } = {}): void {
    this.agentStands.set(`${namespace}/${agent}`, { address, ready: options.ready ?? true });
  }

  /** Pins the load a sandbox reports (PUT /debug/load); null clears it. */
  async setLoad(
    namespace: string,
    pod: string,
    load: { cpu?: number | null; memory?: number | null },
  ): Promise<void> {
    const address = await waitFor(`sandbox process for ${pod}`, () => this.addressOf(namespace, pod));
    await putLoad(address, load, pod, await this.token(Audience.pod(namespace, pod), ["drain"]));
  }

  /** Workspace ids present on a pod's sandbox. */
  async workspacesOn(namespace: string, pod: string): Promise<string[]> {
    const address = this.addressOf(namespace, pod);
    if (!address) return [];
    const res = await fetch(`http://${address}/workspaces`, {
      headers: { authorization: `Bearer ${await this.token(Audience.pod(namespace, pod), ["status"])}` },
    });
    if (!res.ok)
      throw new Error(`GET /workspaces on ${namespace}/${pod}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { items: { id: string }[] };
    return body.items.map((i) => i.id);
  }

  /**
   * Kills the process behind a pod with SIGKILL and does not restart it, as when its node
   * dies: nothing it had not written out survives. The pod stays until deleted.
   */
  async crash(namespace: string, pod: string): Promise<void> {
    const b = this.backends.get(`${namespace}/${pod}`);
    const child = b?.child;
    if (!b || !child) throw new Error(`no process runs behind ${namespace}/${pod}`);
    b.nextStartAt = Infinity;
    b.stopped = true;
    b.address = undefined;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    if (b.container) await podman(["kill", "--signal", "KILL", b.container]).catch(() => undefined);
    child.kill("SIGKILL");
    await exited;
    await this.writeMap();
  }

  private kindOf(pod: Pod): BackedKind | undefined {
    const labels = pod.metadata?.labels ?? {};
    const kinds = this.options.kinds ?? ["sandbox", "agent"];
    if (labels[LABEL_FLEET] && kinds.includes("sandbox")) return "sandbox";
    if (labels[LABEL_AGENT] && kinds.includes("agent")) return "agent";
    return undefined;
  }

  private async listPods(): Promise<Pod[]> {
    const labelSelector = "app.kubernetes.io/managed-by=agentry";
    if (!this.options.namespaces) return (await this.core.listPodForAllNamespaces({ labelSelector })).items;
    const lists = await Promise.all(
      this.options.namespaces.map((namespace) => this.core.listNamespacedPod({ namespace, labelSelector })),
    );
    return lists.flatMap((l) => l.items);
  }

  private async sync(): Promise<void> {
    const pods = await this.listPods();
    this.lastError = undefined;
    const byIP = new Map<string, Pod>();
    for (const pod of pods) if (pod.status?.podIP) byIP.set(pod.status.podIP, pod);
    const live = new Set<string>();
    const terminating = new Map<string, Pod>();
    for (const pod of pods) {
      const kind = this.kindOf(pod);
      if (kind && pod.metadata?.deletionTimestamp) {
        terminating.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod);
        continue;
      }
      // A pod runs once kwok gave it an IP; a terminating pod's process goes.
      if (!kind || !pod.status?.podIP) continue;
      if (pod.status.phase !== "Running") continue;
      const key = `${pod.metadata!.namespace}/${pod.metadata!.name}`;
      const uid = pod.metadata!.uid ?? "";
      const agent = agentOf(pod).agent;
      const stood =
        this.stands.get(key) ??
        (agent ? this.agentStands.get(`${pod.metadata!.namespace}/${agent}`) : undefined);
      if (stood) {
        live.add(key);
        await this.standIn(key, uid, kind, stood, pod);
        continue;
      }
      let b = this.backends.get(key);
      if (b && b.uid !== uid) {
        await this.stopBackend(b);
        b = undefined;
      }
      live.add(key);
      if (!b) {
        b = {
          key,
          uid,
          kind,
          ...agentOf(pod),
          restarts: 0,
          nextStartAt: 0,
          lastWords: [],
          markedFailing: false,
          starting: false,
          stopped: false,
          graceSeconds: Math.min(pod.spec?.terminationGracePeriodSeconds ?? 30, 30),
          log: createWriteStream(join(this.dir, "logs", `${key.replace("/", "_")}.log`), { flags: "a" }),
        };
        this.backends.set(key, b);
        await this.markGraceful(pod);
      }
      if (!b.child && !b.starting && Date.now() >= b.nextStartAt) {
        b.starting = true;
        const launch = this.launch(b, pod, byIP).finally(() => {
          b.starting = false;
          this.launches.delete(launch);
        });
        this.launches.add(launch);
      } else if (b.child && b.mounts && Date.now() - (b.lastRefresh ?? 0) >= REFRESH_MS) {
        b.lastRefresh = Date.now();
        await this.writeMounts(b, pod).catch(() => undefined); // a kubelet keeps the last files too
      }
    }
    for (const [key, b] of this.backends) {
      if (live.has(key)) continue;
      this.backends.delete(key);
      const pod = terminating.get(key);
      if (pod?.metadata?.uid === b.uid) this.terminate(pod, b);
      else await this.stopBackend(b);
    }
    // A terminating pod with no process left (never started, crashed, or already stopped).
    for (const pod of terminating.values())
      if (pod.metadata?.annotations?.[GRACEFUL]) this.terminate(pod, undefined);
    await this.writeMap();
  }

  /** Marks a pod so kwok leaves its removal to us (see kwok-stages.yaml). */
  private async markGraceful(pod: Pod): Promise<void> {
    if (pod.metadata?.annotations?.[GRACEFUL]) return;
    await this.core
      .patchNamespacedPod(
        {
          name: pod.metadata!.name!,
          namespace: pod.metadata!.namespace!,
          body: { metadata: { annotations: { [GRACEFUL]: "true" } } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      )
      .catch(() => undefined); // gone already: kwok removes it as before
  }

  /**
   * A kubelet's graceful termination, in the background: SIGTERM, SIGKILL once the pod's
   * grace period is over, then the pod removed (grace 0).
   */
  private terminate(pod: Pod, b: Backend | undefined): void {
    const uid = pod.metadata!.uid!;
    if (this.terminating.has(uid)) return;
    const grace = Math.min(pod.metadata?.deletionGracePeriodSeconds ?? 30, 30);
    const done = (async () => {
      if (b) {
        b.graceSeconds = grace;
        b.log.write(`[pods] pod deleted: stopping the process (grace ${grace} s)\n`);
        await this.stopBackend(b, grace * 1000, false);
      }
      await this.core
        .deleteNamespacedPod({
          name: pod.metadata!.name!,
          namespace: pod.metadata!.namespace!,
          // In the body: the client leaves a query parameter of 0 out, and without it the
          // apiserver keeps the pod's grace period (kwok would remove the pod only then).
          body: { gracePeriodSeconds: 0, preconditions: { uid } },
        })
        .then(() => b?.log.write("[pods] process exited: pod removed\n"))
        .catch((err: unknown) => b?.log.write(`[pods] pod not removed (gone already?): ${String(err)}\n`));
      b?.log.end();
    })();
    this.terminating.set(uid, done);
    // Forgotten a while after, so a pod deleted again (same uid) is not stopped twice.
    void done.finally(() => setTimeout(() => this.terminating.delete(uid), 60_000).unref());
  }

  /** A test's server behind a pod: in the map, and the pod ready. */
  private async standIn(
    key: string,
    uid: string,
    kind: BackedKind,
    stand: { address: string; ready: boolean },
    pod: Pod,
  ): Promise<void> {
    const address = stand.address;
    let b = this.backends.get(key);
    if (b && (b.uid !== uid || b.child)) {
      await this.stopBackend(b);
      b = undefined;
    }
    if (!b) {
      b = {
        key,
        uid,
        kind,
        ...agentOf(pod),
        address,
        graceSeconds: 0,
        restarts: 0,
        nextStartAt: Infinity,
        lastWords: [],
        markedFailing: false,
        starting: false,
        stopped: false,
        log: createWriteStream(join(this.dir, "logs", `${key.replace("/", "_")}.log`), { flags: "a" }),
      };
      this.backends.set(key, b);
    }
    const ready = pod.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (stand.ready && !ready) await this.markPod(b, pod).catch(() => undefined);
    if (!stand.ready && ready) await this.markUnready(pod).catch(() => undefined);
  }

  /** Running, its readiness probe failing: the conditions only (nothing restarts). */
  private async markUnready(pod: Pod): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const conditions = [
      { type: "PodScheduled", status: "True", lastTransitionTime: now },
      { type: "Initialized", status: "True", lastTransitionTime: now },
      { type: "ContainersReady", status: "False", reason: "ContainersNotReady", lastTransitionTime: now },
      { type: "Ready", status: "False", reason: "ContainersNotReady", lastTransitionTime: now },
    ];
    await this.core.patchNamespacedPodStatus(
      { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status: { conditions } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }

  /** Writes are serialised: the sync loop and starting processes both write. */
  private writeMap(): Promise<void> {
    this.writing = this.writing.then(() => this.writeMapNow()).catch(() => undefined);
    return this.writing;
  }

  private async writeMapNow(): Promise<void> {
    const map: Record<string, string> = {};
    for (const [key, b] of this.backends) if (b.address) map[key] = b.address;
    const text = JSON.stringify(map);
    if (text === this.lastMap) return;
    // Written whole and renamed, so the operator never reads half a file.
    const tmp = `${this.mapFile}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, this.mapFile);
    this.lastMap = text;
  }

  private async launch(b: Backend, pod: Pod, byIP: Map<string, Pod>): Promise<void> {
    let port: number;
    try {
      if (this.options.runtime === "container") {
        const args = await this.containerCommand(b, pod, byIP);
        if (b.stopped) return;
        port = await this.spawnAndListen(b, args, {}, repoRoot, "podman");
      } else {
        const { args, env, cwd } =
          b.kind === "sandbox" ? this.sandboxCommand(b, pod) : await this.agentCommand(pod, byIP);
        await this.mountVolumes(b, pod, env);
        if (b.stopped) return;
        port = await this.spawnAndListen(b, args, env, cwd);
      }
      if (b.kind === "sandbox" && (this.options.calmLoad ?? true)) {
        const [namespace, name] = b.key.split("/") as [string, string];
        await putLoad(
          `127.0.0.1:${port}`,
          CALM,
          b.key,
          await this.token(Audience.pod(namespace, name), ["drain"]),
        );
      }
    } catch (err) {
      if (b.stopped) return;
      const message = errorMessage(err);
      if (err instanceof NotYet) {
        // Waiting is not failing, unless it lasts: then the pod says what it waits for.
        b.waitingSince ??= Date.now();
        b.nextStartAt = Date.now() + 500;
        if (Date.now() - b.waitingSince > 30_000 && !b.markedFailing)
          await this.markPod(b, pod, message).catch(() => undefined);
        return;
      }
      b.child?.kill("SIGKILL");
      if (b.container) await podman(["rm", "-f", "--time", "0", b.container]).catch(() => undefined);
      b.child = undefined;
      b.pid = undefined;
      b.address = undefined;
      b.restarts++;
      b.nextStartAt = Date.now() + Math.min(1000 * 2 ** (b.restarts - 1), MAX_BACKOFF_MS);
      b.log.write(`[pods] ${message}; restarting in ${b.nextStartAt - Date.now()} ms\n`);
      await this.markPod(b, pod, message).catch(() => undefined);
      return;
    }
    if (b.stopped) return;
    b.waitingSince = undefined;
    b.address = `127.0.0.1:${port}`;
    await this.writeMap();
    // Ready once it listens (the local control plane starts backed pods not ready).
    const ready = pod.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (b.markedFailing || !ready) await this.markPod(b, pod).catch(() => undefined);
  }

  /**
   * Writes the pod's ConfigMap and Secret volumes (of the first container) into directories
   * of their own and, for a process (`env` given), points every env value naming a mount
   * path there; NotYet while one is missing. The harness's public key joins the trust
   * directory (the mount at the pod's AGENTRY_TRUST_DIR).
   */
  private async mountVolumes(b: Backend, pod: Pod, env?: Record<string, string>): Promise<Mount[]> {
    const container = pod.spec?.containers?.[0];
    const mounts: Mount[] = [];
    for (const m of container?.volumeMounts ?? []) {
      const v = pod.spec?.volumes?.find((x) => x.name === m.name);
      const source = v?.configMap
        ? {
            kind: "ConfigMap" as const,
            name: v.configMap.name ?? "",
            items: v.configMap.items,
            optional: v.configMap.optional,
          }
        : v?.secret
          ? {
              kind: "Secret" as const,
              name: v.secret.secretName ?? "",
              items: v.secret.items,
              optional: v.secret.optional,
            }
          : undefined;
      const sat =
        v?.projected?.sources?.length === 1 ? v.projected.sources[0]?.serviceAccountToken : undefined;
      if (sat) {
        // A bound token for the pod, requested like a kubelet does (TokenRequest), refreshed.
        mounts.push({
          volume: m.name,
          mountPath: m.mountPath.replace(/\/+$/, ""),
          dir: join(this.dir, "mounts", b.key.replace("/", "_"), m.name),
          kind: "ServiceAccountToken",
          name: pod.spec?.serviceAccountName ?? "default",
          optional: false,
          token: {
            audience: sat.audience ?? "",
            expirationSeconds: sat.expirationSeconds ?? 3600,
            path: sat.path,
            pod: pod.metadata!.name!,
            uid: pod.metadata!.uid!,
          },
        });
        continue;
      }
      if (!source) continue;
      mounts.push({
        volume: m.name,
        mountPath: m.mountPath.replace(/\/+$/, ""),
        dir: join(this.dir, "mounts", b.key.replace("/", "_"), m.name),
        kind: source.kind,
        name: source.name,
        ...(source.items ? { items: source.items.map((i) => ({ key: i.key, path: i.path })) } : {}),
        optional: source.optional ?? false,
      });
    }
    b.mounts = mounts;
    mounts.sort((x, y) => y.mountPath.length - x.mountPath.length);
    const trustPath = containerEnv(pod)[TRUST_DIR_ENV];
    b.trustDir = mounts.find((m) => m.mountPath === trustPath)?.dir;
    for (const [name, value] of Object.entries(env ?? {})) {
      const m = mounts.find((x) => value === x.mountPath || value.startsWith(`${x.mountPath}/`));
      if (m) env![name] = m.dir + value.slice(m.mountPath.length);
    }
    await this.writeMounts(b, pod);
    b.lastRefresh = Date.now();
    return mounts;
  }

  /** (Re)writes every mount of the pod from its ConfigMap or Secret, as a kubelet does. */
  private async writeMounts(b: Backend, pod: Pod): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    for (const m of b.mounts ?? []) {
      let data: Record<string, Buffer>;
      try {
        data = await this.volumeData(m, namespace);
      } catch (err) {
        if ((err as { code?: number }).code === 404 && m.optional) data = {};
        else if ((err as { code?: number }).code === 404)
          throw new NotYet(`${m.kind} ${m.name} (a volume of the pod) does not exist yet`);
        else throw err;
      }
      const files: Record<string, Buffer> = {};
      if (m.items) {
        for (const item of m.items) {
          const value = data[item.key];
          if (value === undefined && !m.optional)
            throw new NotYet(`${m.kind} ${m.name} has no key ${item.key} (a volume of the pod) yet`);
          if (value !== undefined) files[item.path] = value;
        }
      } else Object.assign(files, data);
      if (m.dir === b.trustDir)
        files[`harness-${this.trust.key.kid}.pem`] = Buffer.from(this.trust.key.publicKeyPem);
      await writeDir(m.dir, files);
    }
  }

  private async volumeData(m: Mount, namespace: string): Promise<Record<string, Buffer>> {
    const out: Record<string, Buffer> = {};
    if (m.token) {
      const t = m.token;
      if (!t.value || Date.now() - (t.at ?? 0) > 60_000) {
        const answer = await this.core.createNamespacedServiceAccountToken({
          name: m.name,
          namespace,
          body: {
            spec: {
              audiences: [t.audience],
              expirationSeconds: t.expirationSeconds,
              boundObjectRef: { apiVersion: "v1", kind: "Pod", name: t.pod, uid: t.uid },
            },
          },
        });
        t.value = answer.status?.token;
        t.at = Date.now();
      }
      if (t.value) out[t.path] = Buffer.from(t.value);
      return out;
    }
    if (m.kind === "ConfigMap") {
      const cm = await this.core.readNamespacedConfigMap({ name: m.name, namespace });
      for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v);
      for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
    } else {
      const secret = await this.core.readNamespacedSecret({ name: m.name, namespace });
      for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, "base64");
    }
    return out;
  }

  private sandboxCommand(b: Backend, pod: Pod) {
    const root = join(this.dir, "sandboxes", b.key.replace("/", "_"));
    return {
      args: [
        join(repoRoot, "runtimes", "sandbox", "main.ts"),
        "--listen=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        `--root=${root}`,
        "--allow-load-override",
      ],
      env: containerEnv(pod),
      cwd: repoRoot,
    };
  }

  /** `podman run` arguments for the container of agentry's image that backs this pod. */
  private async containerCommand(b: Backend, pod: Pod, byIP: Map<string, Pod>): Promise<string[]> {
    const env: Record<string, string> =
      b.kind === "sandbox"
        ? {
            AGENTRY_SANDBOX_LISTEN: "127.0.0.1:0",
            AGENTRY_SANDBOX_METRICS_ADDR: "127.0.0.1:0",
            ...((this.options.calmLoad ?? true) ? { AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE: "true" } : {}),
          }
        : {
            ...this.agentEnv(containerEnv(pod), byIP),
            AGENTRY_HOST: "127.0.0.1",
            AGENTRY_PORT: "0",
            AGENTRY_METRICS_ADDR: "127.0.0.1:0",
          };
    const volumeSources: Record<string, string> = {};
    for (const m of await this.mountVolumes(b, pod)) volumeSources[m.volume] = m.dir;
    const claim = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim);
    const dataDir = claim ? await this.volumeDir(pod) : undefined;
    if (claim && dataDir) {
      // The container's user must write there, as fsGroup would allow on a real volume.
      await chmod(dataDir, 0o777);
      volumeSources[claim.name] = dataDir;
    }
    const options = await podRunOptions(pod, {
      image: imageId(b.kind),
      volumesDir: join(this.dir, "volumes", b.key.replace("/", "_"), b.uid.slice(0, 8)),
      volumeSources,
      env,
      owner: "pods",
    });
    const name = b.key.replace("/", "-").slice(0, 48);
    b.container = `agentry-pod-${name}-${randomBytes(3).toString("hex")}`;
    return ["run", "--rm", ...runArgs(options, b.container)];
  }

  /** The pod's env as the agent gets it: echo unless a key is given, the workspace on loopback. */
  private agentEnv(env: Record<string, string>, byIP: Map<string, Pod>): Record<string, string> {
    if (!this.options.modelApiKey) {
      env.AGENTRY_MODEL_PROVIDER = "echo";
      env.AGENTRY_MODEL = env.AGENTRY_MODEL || "echo";
      delete env.AGENTRY_MODEL_ENDPOINT;
      delete env.AGENTRY_MODEL_API_KEY;
    } else {
      env.AGENTRY_MODEL_API_KEY = this.options.modelApiKey;
    }
    if (env.AGENTRY_WORKSPACE_URL)
      env.AGENTRY_WORKSPACE_URL = this.translate(env.AGENTRY_WORKSPACE_URL, byIP);
    return env;
  }

  private async agentCommand(pod: Pod, byIP: Map<string, Pod>) {
    const env = this.agentEnv(containerEnv(pod), byIP);
    let cwd = repoRoot;
    const dataDir = await this.volumeDir(pod);
    if (dataDir) {
      cwd = dataDir;
      env.AGENTRY_DATA_DIR = dataDir;
    }
    return {
      args: [
        join(repoRoot, "runtimes", "agent", "main.ts"),
        "serve",
        "--host=127.0.0.1",
        "--port=0",
        "--metrics-addr=127.0.0.1:0",
      ],
      env,
      cwd,
    };
  }

  /** http://<pod IP>:<port>/... of a backed pod → its loopback process; anything else is refused. */
  private translate(url: string, byIP: Map<string, Pod>): string {
    const u = new URL(url);
    const target = byIP.get(u.hostname);
    const key = target ? `${target.metadata!.namespace}/${target.metadata!.name}` : undefined;
    const address = key ? this.backends.get(key)?.address : undefined;
    if (!address) throw new NotYet(`no loopback process serves ${u.host} (from AGENTRY_WORKSPACE_URL) yet`);
    return `http://${address}${u.pathname}`;
  }

  /** The hostPath of the PersistentVolume bound to the pod's first claim, if it mounts one. */
  private async volumeDir(pod: Pod): Promise<string | undefined> {
    const claim = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    if (!claim) return undefined;
    const pvc = await this.core.readNamespacedPersistentVolumeClaim({
      name: claim,
      namespace: pod.metadata!.namespace!,
    });
    const volume = pvc.spec?.volumeName;
    if (!volume) throw new NotYet(`PersistentVolumeClaim ${claim} is not bound yet`);
    const pv = await this.core.readPersistentVolume({ name: volume });
    const path = pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
    if (!path)
      throw new Error(`PersistentVolume ${volume} has no hostPath or local path this machine can use`);
    await mkdir(path, { recursive: true });
    return path;
  }

  /** Starts the program (node with tsx, or podman run) and resolves with the port it logs. */
  private spawnAndListen(
    b: Backend,
    args: string[],
    env: Record<string, string>,
    cwd: string,
    command: "node" | "podman" = "node",
  ): Promise<number> {
    const child =
      command === "podman"
        ? // Attached, so podman forwards SIGTERM to the container and exits with its code.
          spawn("podman", args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
        : spawn(process.execPath, ["--import", import.meta.resolve("tsx"), ...args], {
            cwd,
            env: { PATH: process.env.PATH ?? "", ...env },
            stdio: ["ignore", "pipe", "pipe"],
          });
    b.child = child;
    b.pid = child.pid;
    b.lastWords = [];
    const listening = b.kind === "sandbox" ? "sandbox listening" : "agent listening";
    return new Promise<number>((resolve, reject) => {
      let port: number | undefined;
      const onLine = (line: string) => {
        b.log.write(`${line}\n`);
        b.lastWords.push(line);
        if (b.lastWords.length > 200) b.lastWords.shift();
        if (port !== undefined) return;
        try {
          const entry = JSON.parse(line) as { message?: string; port?: number };
          if (entry.message === listening && entry.port) resolve((port = entry.port));
        } catch {
          // not a log line
        }
      };
      createInterface({ input: child.stdout }).on("line", onLine);
      createInterface({ input: child.stderr }).on("line", onLine);
      child.once("exit", (code, signal) => {
        const why = `${b.kind} process exited with ${signal ?? `code ${code}`}: ${lastWords(b)}`;
        if (port === undefined) return reject(new Error(why));
        if (b.stopped || b.child !== child) return;
        // It ran and died: the pod stops being ready until a restart listens again.
        b.child = undefined;
        b.pid = undefined;
        b.address = undefined;
        b.restarts++;
        b.nextStartAt = Date.now() + Math.min(1000 * 2 ** (b.restarts - 1), MAX_BACKOFF_MS);
        b.log.write(`[pods] ${why}\n`);
        const [namespace, name] = b.key.split("/") as [string, string];
        void this.writeMap()
          .then(() => this.core.readNamespacedPod({ namespace, name }))
          .then((pod) => this.markPod(b, pod, why))
          .catch(() => undefined);
      });
    });
  }

  /** Writes the pod's status as a kubelet would: failing with `message`, or ready again. */
  private async markPod(b: Backend, pod: Pod, message?: string): Promise<void> {
    if (pod.metadata?.annotations?.["kwok.agentry.dev/status"] === "manual") return;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const ready = message === undefined;
    const status = ready ? "True" : "False";
    const conditions = [
      { type: "PodScheduled", status: "True", lastTransitionTime: now },
      { type: "Initialized", status: "True", lastTransitionTime: now },
      {
        type: "ContainersReady",
        status,
        lastTransitionTime: now,
        ...(ready
          ? {}
          : { reason: "ContainersNotReady", message: `containers with unready status: [${names(pod)}]` }),
      },
      {
        type: "Ready",
        status,
        lastTransitionTime: now,
        ...(ready
          ? {}
          : { reason: "ContainersNotReady", message: `containers with unready status: [${names(pod)}]` }),
      },
    ];
    const containerStatuses = (pod.spec?.containers ?? []).map((c, i) => ({
      name: c.name,
      image: c.image ?? "",
      imageID: "",
      ready: ready,
      started: ready,
      restartCount: b.restarts,
      state: ready
        ? { running: { startedAt: now } }
        : i === 0
          ? { waiting: { reason: "CrashLoopBackOff", message: message.slice(0, 1024) } }
          : { running: { startedAt: now } },
    }));
    await this.core.patchNamespacedPodStatus(
      {
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        body: { status: { conditions, containerStatuses } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    b.markedFailing = !ready;
    if (ready) return;
    await this.core
      .createNamespacedEvent({
        namespace: pod.metadata!.namespace!,
        body: {
          metadata: { generateName: `${pod.metadata!.name}.` },
          involvedObject: {
            kind: "Pod",
            apiVersion: "v1",
            namespace: pod.metadata!.namespace,
            name: pod.metadata!.name,
            uid: pod.metadata!.uid,
          },
          type: "Warning",
          reason: "BackOff",
          message: `Back-off restarting the ${b.kind} process: ${message.slice(0, 900)}`,
          source: { component: "agentry-dev-pods" },
          firstTimestamp: new Date(now),
          lastTimestamp: new Date(now),
          count: 1,
        },
      })
      .catch(() => undefined);
  }

  private async stopBackend(b: Backend, graceMs?: number, endLog = true): Promise<void> {
    b.stopped = true;
    b.address = undefined;
    const child = b.child;
    b.child = undefined;
    if (child) {
      // A container gets the pod's grace period (at most 30 s), then is removed by force.
      const container = b.container;
      const kill = () =>
        container
          ? void podman(["rm", "-f", "--time", "0", container]).finally(() => child.kill("SIGKILL"))
          : child.kill("SIGKILL");
      await stopProcess(child, graceMs ?? (container ? b.graceSeconds * 1000 : 10_000), kill);
    }
    // A container still being created when podman was told to stop may outlive it.
    if (b.container) await podman(["rm", "-f", "--time", "0", b.container]).catch(() => undefined);
    if (endLog) b.log.end();
  }

  /** Stops every process (SIGTERM, then SIGKILL after 10 s) and removes its own temp dir. */
  async stop(): Promise<void> {
    // Never throws: callers run it as a test's `after` hook, and a hook that throws skips the
    // test's later hooks (the operator's, which stops it; left running, it keeps the test file
    // from ever ending).
    await this.stopAll().catch((err: unknown) => process.stderr.write(`[pods] stop: ${errorMessage(err)}\n`));
  }

  private async stopAll(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.syncing;
    await Promise.all([...this.terminating.values()]);
    const backends = [...this.backends.values()];
    await Promise.all(backends.map((b) => this.stopBackend(b)));
    // A start under way checks `stopped` between its steps, but one spawning at the moment of
    // stopping has its process now: stopped again once the start is over. Only then is the
    // directory removed, or a start writing its mounts makes the removal fail, and a failing
    // `after` hook skips the test's other ones (the operator would be left running).
    await Promise.allSettled([...this.launches]);
    await Promise.all(backends.filter((b) => b.child).map((b) => this.stopBackend(b, undefined, false)));
    this.backends.clear();
    if (this.ownDir) await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Something the process needs is not there yet (retried soon, not counted as a crash). */
class NotYet extends Error {}

const CALM = { cpu: 0.05, memory: 0.05 };
/** A pod whose removal waits for its process to exit (kwok-stages.yaml's agentry-pod-delete-graceful). */
const GRACEFUL = "kwok.agentry.dev/graceful";
/** How often mounted ConfigMaps and Secrets are written again (a kubelet takes up to a minute). */
const REFRESH_MS = 1000;

/** Makes `dir` hold exactly `files` (each written whole, then renamed into place). */
async function writeDir(dir: string, files: Record<string, Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    const old = await readFile(target).catch(() => undefined);
    if (old?.equals(content)) continue;
    await mkdir(join(target, ".."), { recursive: true });
    await writeFile(`${target}.tmp`, content);
    await rename(`${target}.tmp`, target);
  }
  for (const name of await readdir(dir))
    if (!(name in files)) await rm(join(dir, name), { recursive: true, force: true });
}

async function putLoad(
  address: string,
  load: { cpu?: number | null; memory?: number | null },
  what: string,
  token: string,
) {
  const res = await fetch(`http://${address}/debug/load`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(load),
  });
  if (!res.ok) throw new Error(`PUT /debug/load on ${what}: HTTP ${res.status}`);
}

function defaultKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** The first container's env: plain values and the downward API (other valueFrom left out). */
function containerEnv(pod: Pod): Record<string, string> {
  const fields: Record<string, string | undefined> = {
    "metadata.name": pod.metadata?.name,
    "metadata.namespace": pod.metadata?.namespace,
    "metadata.uid": pod.metadata?.uid,
    "status.podIP": pod.status?.podIP,
  };
  const env: Record<string, string> = {};
  for (const e of pod.spec?.containers?.[0]?.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    const value = e.value ?? (field ? fields[field] : undefined);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

function names(pod: Pod): string {
  return (pod.spec?.containers ?? []).map((c) => c.name).join(" ");
}

function lastWords(b: Backend): string {
  // The programs' own fatal line ("agentry agent: ..."), else the last logged message.
  const fatal = b.lastWords.find((l) => /^agentry [a-z]+: /.test(l));
  if (fatal) return fatal;
  for (const line of [...b.lastWords].reverse()) {
    try {
      const entry = JSON.parse(line) as { message?: string; error?: string; reason?: string };
      if (entry.message) return [entry.message, entry.reason ?? entry.error].filter(Boolean).join(": ");
    } catch {
      if (line.trim()) return line.trim();
    }
  }
  return "no output";
}
