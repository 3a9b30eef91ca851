// Real sandbox runtime processes (runtimes/sandbox) standing in for the containers of
// kwok's fake sandbox pods: for every pod of the watched fleets one process on a free
// loopback port, recorded in the address map file the operator reads
// (--sandbox-address-map). Processes of pods that disappear are stopped.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as k8s from "@kubernetes/client-node";
import { api } from "./cluster.ts";
import { repoRoot } from "./paths.ts";
import { waitFor } from "./process.ts";

interface Sandbox {
  child: ChildProcess;
  address: string;
  root: string;
}

export class SandboxProcesses {
  readonly mapFile: string;
  private readonly dir: string;
  private readonly namespaces: string[];
  private readonly running = new Map<string, Sandbox>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();

  private constructor(dir: string, namespaces: string[]) {
    this.dir = dir;
    this.namespaces = namespaces;
    this.mapFile = join(dir, "sandbox-addresses.json");
  }

  static async start(namespaces: string[]): Promise<SandboxProcesses> {
    const dir = await mkdtemp(join(tmpdir(), "agentry-sandboxes-"));
    const s = new SandboxProcesses(dir, namespaces);
    await writeFile(s.mapFile, "{}");
    s.timer = setInterval(() => {
      s.syncing = s.syncing.then(() => s.sync()).catch(() => undefined);
    }, 200);
    return s;
  }

  /** host:port of the sandbox process of a pod. */
  addressOf(namespace: string, pod: string): string | undefined {
    return this.running.get(`${namespace}/${pod}`)?.address;
  }

  /** Pins the load a sandbox reports (PUT /debug/load); null clears it. */
  async setLoad(
    namespace: string,
    pod: string,
    load: { cpu?: number | null; memory?: number | null },
  ): Promise<void> {
    const address = await waitFor(`sandbox process for ${pod}`, () => this.addressOf(namespace, pod));
    const res = await fetch(`http://${address}/debug/load`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(load),
    });
    if (!res.ok) throw new Error(`PUT /debug/load on ${pod}: HTTP ${res.status}`);
  }

  /** Workspace ids present on a pod's sandbox. */
  async workspacesOn(namespace: string, pod: string): Promise<string[]> {
    const address = this.addressOf(namespace, pod);
    if (!address) return [];
    const res = await fetch(`http://${address}/workspaces`);
    const body = (await res.json()) as { items: { id: string }[] };
    return body.items.map((i) => i.id);
  }

  private async sync(): Promise<void> {
    const core = api(k8s.CoreV1Api);
    const live = new Set<string>();
    for (const namespace of this.namespaces) {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: "agentry.dev/sandbox-fleet" });
      for (const pod of pods.items) {
        if (pod.metadata?.deletionTimestamp) continue;
        const key = `${namespace}/${pod.metadata!.name}`;
        live.add(key);
        if (!this.running.has(key)) this.running.set(key, await this.spawn(key));
      }
    }
    let changed = false;
    for (const [key, sb] of this.running) {
      if (live.has(key)) continue;
      sb.child.kill("SIGTERM");
      this.running.delete(key);
      changed = true;
    }
    const map = Object.fromEntries([...this.running].map(([k, v]) => [k, v.address]));
    if (changed || Object.keys(map).length > 0) await writeFile(this.mapFile, JSON.stringify(map));
  }

  private async spawn(key: string): Promise<Sandbox> {
    const root = join(this.dir, key.replace("/", "_"));
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(repoRoot, "runtimes", "sandbox", "main.ts"),
        "--listen=127.0.0.1:0",
        `--root=${root}`,
        "--allow-load-override",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on("line", (line) => {
        try {
          const entry = JSON.parse(line) as { message?: string; port?: number };
          if (entry.message === "sandbox listening" && entry.port) resolve(entry.port);
        } catch {
          // not a log line
        }
      });
      child.once("exit", (code) => reject(new Error(`sandbox for ${key} exited with ${code}`)));
    });
    // Report a calm load unless a test pins another: the real machine's load (other tests,
    // builds) must not look like sandbox pressure.
    const res = await fetch(`http://127.0.0.1:${port}/debug/load`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ cpu: 0.05, memory: 0.05 }),
    });
    if (!res.ok) throw new Error(`pinning the load of ${key}: HTTP ${res.status}`);
    return { child, address: `127.0.0.1:${port}`, root };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    await Promise.all(
      [...this.running.values()].map(
        (sb) =>
          new Promise((resolve) => {
            if (sb.child.exitCode !== null) return resolve(undefined);
            sb.child.once("exit", resolve);
            sb.child.kill("SIGTERM");
          }),
      ),
    );
    this.running.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}
