// Real containers of agentry's images, run with podman (runc) the way Kubernetes would run
// a Pod's container, on loopback: `--network host` inside the test run's loopback-only
// namespace, listening on 127.0.0.1. Used by the container suite (test/containers/) and by
// the container backend of the fake pods (pods.ts).
//
// The images are the ones `make test-images` (hack/images/build.sh --test) built for this
// checkout: their ids are in .tmp/images/<name>.iid. Without podman or without those images
// the callers skip with the reason, except under CI=true, where that is a failure.
//
// A Pod's container maps onto `podman run` like this (podRunOptions):
//   runAsUser/runAsGroup (+ fsGroup)          --user uid:gid (--group-add gid)
//   readOnlyRootFilesystem                    --read-only --read-only-tmpfs=false (no /tmp
//                                             that Kubernetes would not give either)
//   allowPrivilegeEscalation: false           --security-opt no-new-privileges
//   capabilities drop/add                     --cap-drop / --cap-add
//   seccompProfile RuntimeDefault             podman's default profile
//   command / args                            --entrypoint / arguments
//   env value, fieldRef namespace/name        --env (secretKeyRef values must be given)
//   emptyDir, hostPath volumes                a host directory bind-mounted (mode 0777, as
//                                             the kubelet makes an emptyDir)
//   resources.limits cpu/memory               --cpus / --memory
//   a ServiceAccount token (when mounted)     /var/run/secrets/kubernetes.io/serviceaccount
//                                             and KUBERNETES_SERVICE_HOST/PORT, given by the caller
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { repoRoot } from "./paths.ts";
import { errorMessage } from "../../lib/log.ts";

export const IMAGE_NAMES = ["operator", "gateway", "agent", "sandbox"] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

/** Label on every container the harness starts: what started it. */
export const HARNESS_LABEL = "agentry.dev/test-harness";
/** Label naming the test run (AGENTRY_TEST_RUN_ID), whose end removes what is left. */
export const RUN_LABEL = "agentry.dev/test-run";
const imagesDir = join(repoRoot, ".tmp", "images");

function podmanPath(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/local/bin"]))
    if (dir && existsSync(join(dir, "podman"))) return join(dir, "podman");
  return undefined;
}

let obstacleChecked: { why: string | undefined } | undefined;

/** Why the images cannot run here (no podman, images not built), or undefined. */
export function containerObstacle(): string | undefined {
  if (obstacleChecked) return obstacleChecked.why;
  let why: string | undefined;
  const missing = IMAGE_NAMES.filter((n) => !existsSync(join(imagesDir, `${n}.iid`)));
  if (!podmanPath()) why = "podman is not installed (Debian: apt-get install podman runc debootstrap uidmap)";
  else if (missing.length)
    why = `the test images are not built (${missing.join(", ")}): run make test-images (needs root and, once, the network)`;
  else {
    const gone = IMAGE_NAMES.filter(
      (n) => spawnSync("podman", ["image", "exists", imageId(n)], { stdio: "ignore" }).status !== 0,
    );
    if (gone.length)
      why = `the test images ${gone.join(", ")} are gone from podman's storage: run make test-images`;
  }
  obstacleChecked = { why };
  return why;
}

/**
 * True when containers can run; otherwise skips the test with the reason, or throws under
 * CI=true (CI installs podman and builds the images before the tests).
 */
export function containersOr(t: { skip: (message?: string) => void }): boolean {
  const why = containerObstacle();
  if (!why) return true;
  if (process.env.CI === "true") throw new Error(`${why} (CI=true: the container suite may not be skipped)`);
  t.skip(why);
  return false;
}

/** The image id make test-images built for this checkout. */
export function imageId(name: ImageName): string {
  return readFileSync(join(imagesDir, `${name}.iid`), "utf8").trim();
}

export interface Mount {
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface RunOptions {
  image: string;
  /** Replaces the image's ENTRYPOINT (a Pod's `command`). */
  entrypoint?: string[];
  args?: string[];
  env?: Record<string, string>;
  user?: string;
  groups?: string[];
  readOnly?: boolean;
  noNewPrivileges?: boolean;
  capDrop?: string[];
  capAdd?: string[];
  mounts?: Mount[];
  memory?: string;
  cpus?: string;
  /** Label value of HARNESS_LABEL (what started it). */
  owner?: string;
}

/** `podman run` arguments (after `run`) for these options, image and args last. */
export function runArgs(o: RunOptions, name: string): string[] {
  const a = ["--name", name, "--network", "host", "--label", `${HARNESS_LABEL}=${o.owner ?? "test"}`];
  if (process.env.AGENTRY_TEST_RUN_ID) a.push("--label", `${RUN_LABEL}=${process.env.AGENTRY_TEST_RUN_ID}`);
  // Only images built here (nothing is pulled); logs in a file, readable after the exit; no
  // passwd entry for the uid added to the image (the kubelet adds none either).
  a.push("--pull", "never", "--log-driver", "k8s-file", "--passwd=false");
  if (o.user) a.push("--user", o.user);
  for (const g of o.groups ?? []) a.push("--group-add", g);
  if (o.readOnly) a.push("--read-only", "--read-only-tmpfs=false");
  if (o.noNewPrivileges) a.push("--security-opt", "no-new-privileges");
  for (const c of o.capDrop ?? []) a.push(`--cap-drop=${c}`);
  for (const c of o.capAdd ?? []) a.push(`--cap-add=${c}`);
  for (const m of o.mounts ?? []) a.push("--volume", `${m.source}:${m.target}:${m.readOnly ? "ro" : "rw"}`);
  if (o.memory) a.push("--memory", o.memory);
  if (o.cpus) a.push("--cpus", o.cpus);
  for (const [k, v] of Object.entries(o.env ?? {})) a.push("--env", `${k}=${v}`);
  if (o.entrypoint) a.push("--entrypoint", JSON.stringify(o.entrypoint));
  a.push(o.image, ...(o.args ?? []));
  return a;
}

export interface PodRunContext {
  image: string;
  /** Directory under which each emptyDir volume gets a host directory. */
  volumesDir: string;
  /** Host paths for other volumes (hostPath of a bound claim, a ConfigMap's files), by volume name. */
  volumeSources?: Record<string, string>;
  /** Values of env entries the kubelet would resolve (secretKeyRef, configMapKeyRef), by name. */
  resolvedEnv?: Record<string, string>;
  /** Replaces or adds env values after the Pod's (e.g. a listen address on loopback). */
  env?: Record<string, string>;
  /** Replaces `--flag=value` arguments of the Pod's args by flag, or appends them. */
  flags?: Record<string, string>;
  /** A ServiceAccount token directory to mount where the kubelet would, with the apiserver's address. */
  serviceAccount?: { dir: string; host: string; port: number };
  owner?: string;
  /** Which container of the Pod (default the first). */
  container?: string;
}

/** Options that run one container of a Pod as Kubernetes would (see the table above). */
export async function podRunOptions(pod: k8s.V1Pod, ctx: PodRunContext): Promise<RunOptions> {
  const spec = pod.spec;
  if (!spec) throw new Error("the pod has no spec");
  const c = ctx.container ? spec.containers.find((x) => x.name === ctx.container) : spec.containers[0];
  if (!c) throw new Error(`the pod has no container ${ctx.container ?? ""}`);
  const podSec = spec.securityContext ?? {};
  const sec = c.securityContext ?? {};
  const uid = sec.runAsUser ?? podSec.runAsUser;
  const gid = sec.runAsGroup ?? podSec.runAsGroup;
  if ((sec.runAsNonRoot ?? podSec.runAsNonRoot) && (uid === undefined || uid === 0))
    throw new Error("runAsNonRoot without a non-zero runAsUser: the kubelet would refuse to start it");

  const env: Record<string, string> = {};
  const namespace = pod.metadata?.namespace ?? "default";
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = pod.metadata?.name ?? "";
    else if (ctx.resolvedEnv?.[e.name] !== undefined) env[e.name] = ctx.resolvedEnv[e.name]!;
    else if (e.valueFrom && !(e.valueFrom.secretKeyRef?.optional || e.valueFrom.configMapKeyRef?.optional))
      throw new Error(`env ${e.name} comes from ${JSON.stringify(e.valueFrom)}: give its value`);
  }
  Object.assign(env, ctx.env ?? {});

  const mounts: Mount[] = [];
  const safe = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, "_");
  for (const vm of c.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === vm.name);
    let source = ctx.volumeSources?.[vm.name];
    if (!source && volume?.emptyDir) {
      source = join(ctx.volumesDir, safe(vm.name));
      await mkdir(source, { recursive: true });
      await chmod(source, 0o777);
    }
    if (!source && volume?.hostPath) source = volume.hostPath.path;
    if (!source) throw new Error(`volume ${vm.name} (${JSON.stringify(volume)}): give its host path`);
    mounts.push({ source, target: vm.mountPath, readOnly: vm.readOnly ?? false });
  }
  const automount = spec.automountServiceAccountToken ?? true;
  if (ctx.serviceAccount && automount) {
    mounts.push({
      source: ctx.serviceAccount.dir,
      target: "/var/run/secrets/kubernetes.io/serviceaccount",
      readOnly: true,
    });
    env.KUBERNETES_SERVICE_HOST = ctx.serviceAccount.host;
    env.KUBERNETES_SERVICE_PORT = String(ctx.serviceAccount.port);
  }

  let args = [...(c.args ?? [])];
  for (const [flag, value] of Object.entries(ctx.flags ?? {})) {
    const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i >= 0) args[i] = `${flag}=${value}`;
    else args = [...args, `${flag}=${value}`];
  }
  const limits = c.resources?.limits ?? {};
  return {
    image: ctx.image,
    ...(c.command ? { entrypoint: c.command } : {}),
    args,
    env,
    ...(uid !== undefined ? { user: gid !== undefined ? `${uid}:${gid}` : String(uid) } : {}),
    groups: podSec.fsGroup !== undefined ? [String(podSec.fsGroup)] : [],
    readOnly: sec.readOnlyRootFilesystem ?? false,
    noNewPrivileges: sec.allowPrivilegeEscalation === false,
    capDrop: sec.capabilities?.drop ?? [],
    capAdd: sec.capabilities?.add ?? [],
    mounts,
    ...(limits.memory ? { memory: toPodmanMemory(String(limits.memory)) } : {}),
    ...(limits.cpu ? { cpus: String(cpuCores(String(limits.cpu))) } : {}),
    owner: ctx.owner ?? "test",
  };
}

/** Kubernetes memory quantity → bytes for podman (Mi/Gi/M/G/plain). */
export function toPodmanMemory(q: string): string {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`memory limit ${q}: not a quantity this harness understands`);
  const mult: Record<string, number> = {
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return String(Math.round(Number(m[1]) * (m[2] ? mult[m[2]]! : 1)));
}

/** Kubernetes CPU quantity → cores. */
export function cpuCores(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

export interface StopResult {
  exitCode: number;
  seconds: number;
}

/** One detached container: started, inspected, stopped and removed by the test. */
export class Container {
  readonly name: string;
  readonly options: RunOptions;
  private removed = false;

  private constructor(name: string, options: RunOptions) {
    this.name = name;
    this.options = options;
  }

  /** `podman run -d`: fails with podman's own message when the container cannot start. */
  static async run(options: RunOptions, prefix = "agentry-test"): Promise<Container> {
    const name = `${prefix}-${randomBytes(4).toString("hex")}`;
    const res = await podman(["run", "-d", ...runArgs(options, name)]);
    if (res.code !== 0) {
      await podman(["rm", "-f", name]);
      throw new Error(`podman run ${name} failed (${res.code}): ${res.stderr.trim()}`);
    }
    return new Container(name, options);
  }

  async logs(): Promise<string> {
    const res = await podman(["logs", this.name]);
    return res.stdout + res.stderr;
  }

  /** JSON log lines of the container (others are skipped). */
  async logEntries(): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const line of (await this.logs()).split("\n")) {
      try {
        const v = JSON.parse(line) as unknown;
        if (v && typeof v === "object") out.push(v as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
    return out;
  }

  async state(): Promise<{ running: boolean; exitCode: number; oomKilled: boolean }> {
    const res = await podman([
      "inspect",
      "--format",
      "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}",
      this.name,
    ]);
    const [running, exitCode, oom] = res.stdout.trim().split(" ");
    return { running: running === "true", exitCode: Number(exitCode), oomKilled: oom === "true" };
  }

  /**
   * Polls `check` until it returns a value; fails at once when the container exits, and at the
   * bound with the container's logs in the message.
   */
  async waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        last = errorMessage(err);
      }
      const s = await this.state();
      if (!s.running) {
        // Under cgroup v1 podman may not see an OOM kill: 137 is SIGKILL, e.g. the memory limit.
        const why = s.oomKilled
          ? ", OOM-killed"
          : s.exitCode === 137
            ? ", SIGKILL: over its memory limit?"
            : "";
        throw new Error(
          `container ${this.name} exited (code ${s.exitCode}${why}) before ${what}; its logs:\n${await this.logs()}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(
          `container ${this.name}: no ${what} within ${timeoutMs / 1000}s${last ? ` (last: ${last})` : ""}; its logs:\n${await this.logs()}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The first log entry with this message (e.g. "sandbox listening"). */
  waitForLog(message: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    return this.waitFor(
      `log "${message}"`,
      async () => (await this.logEntries()).find((e) => e.message === message),
      timeoutMs,
    );
  }

  /** Waits until GET url answers 200 (health/readiness), with the container's logs on failure. */
  waitHttpOk(url: string, timeoutMs = 60_000, init?: RequestInit): Promise<Response> {
    return this.waitFor(
      `200 from ${url}`,
      async () => {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
        if (res.status === 200) return res;
        throw new Error(`${url}: ${res.status} ${await res.text()}`);
      },
      timeoutMs,
    );
  }

  /** SIGTERM, SIGKILL after `graceSeconds` (podman stop -t, as the kubelet): exit code and time taken. */
  async stop(graceSeconds: number): Promise<StopResult> {
    const t0 = Date.now();
    const res = await podman(["stop", "--time", String(graceSeconds), this.name]);
    const seconds = (Date.now() - t0) / 1000;
    if (res.code !== 0) throw new Error(`podman stop ${this.name}: ${res.stderr}`);
    return { exitCode: (await this.state()).exitCode, seconds };
  }

  /** Paths changed in the container's own filesystem (podman diff): "C /path", "A /path", "D /path". */
  async diff(): Promise<string[]> {
    const res = await podman(["diff", this.name]);
    if (res.code !== 0) throw new Error(`podman diff ${this.name}: ${res.stderr}`);
    return res.stdout.split("\n").filter((l) => l.trim());
  }

  /** Runs a command in the running container (podman exec), as the container's user. */
  exec(command: string[]): Promise<PodmanResult> {
    return podman(["exec", this.name, ...command]);
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await podman(["rm", "-f", "--time", "0", this.name]);
  }
}

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Removes every container of this test run (AGENTRY_TEST_RUN_ID) that is still there. */
export async function removeRunContainers(runId: string): Promise<number> {
  if (!podmanPath()) return 0;
  const list = await podman(["ps", "-aq", "--filter", `label=${RUN_LABEL}=${runId}`]);
  const ids = list.stdout.split("\n").filter(Boolean);
  if (ids.length) await podman(["rm", "-f", "--time", "0", ...ids]);
  return ids.length;
}

/** Runs podman with these arguments; never throws on a non-zero exit. */
export function podman(args: string[]): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("podman", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
