// How the operator reaches the sandbox runtime in each sandbox pod (runtimes/sandbox): its
// address (PodAddresses: the pod IP, or a map of loopback processes standing in for fake
// pods), and the few calls the fleet controller makes.
import { readFileSync, statSync } from "node:fs";
import type { SandboxStatus } from "../../contracts/sandbox.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";

export interface SandboxApi {
  status(address: string): Promise<SandboxStatus>;
  putWorkspace(address: string, id: string, ownerId?: string): Promise<void>;
  deleteWorkspace(address: string, id: string): Promise<void>;
  drain(address: string): Promise<void>;
  undrain(address: string): Promise<void>;
}

/** SandboxApi over runtimes/sandbox's own client, one client per sandbox address. */
export class HttpSandboxApi implements SandboxApi {
  private readonly timeoutMs: number;
  private readonly token: string | undefined;
  private readonly clients = new Map<string, SandboxClient>();

  constructor(options: { timeoutMs?: number; token?: string } = {}) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.token = options.token;
  }

  private client(address: string): SandboxClient {
    let c = this.clients.get(address);
    if (!c) {
      if (this.clients.size > 10_000) this.clients.clear();
      c = new SandboxClient({ baseUrl: `http://${address}`, token: this.token, timeoutMs: this.timeoutMs });
      this.clients.set(address, c);
    }
    return c;
  }

  status(address: string): Promise<SandboxStatus> {
    return this.client(address).status();
  }

  async putWorkspace(address: string, id: string, ownerId?: string): Promise<void> {
    await this.client(address).createWorkspace(id, { ownerId });
  }

  deleteWorkspace(address: string, id: string): Promise<void> {
    return this.client(address).deleteWorkspace(id);
  }

  async drain(address: string): Promise<void> {
    await this.client(address).drain();
  }

  async undrain(address: string): Promise<void> {
    await this.client(address).undrain();
  }
}

export interface PodAddressInfo {
  metadata: { name?: string; namespace?: string };
  status?: { podIP?: string };
}

/** What one resolution did: dialled the pod IP, a mapped (loopback) address, or nothing. */
export type Resolution =
  { pod: string; via: "pod-ip" | "map"; address: string } | { pod: string; via: "none" };

/** True for 127.0.0.0/8, ::1 and localhost, with or without a :port. */
export function isLoopbackAddress(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.split(":").length === 2) host = host.slice(0, host.indexOf(":"));
  return host === "::1" || host === "localhost" || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Resolves a pod the operator talks to (a sandbox runtime, an agent's /readyz) to host:port.
 * In a cluster: the pod IP. With `--pod-address-map` (a JSON object {"namespace/pod":
 * "host:port"}, re-read when it changes) the map is the only source: a listed pod goes to
 * its loopback address, an unlisted pod resolves to nothing and is never dialled, and a
 * non-loopback entry is refused. This is how the local control plane's fake (kwok) pods
 * are backed by real processes on loopback, and why nothing the tests or `make dev` start
 * dials a fake pod IP. Every new resolution is reported to `onResolve` (logs, metrics).
 */
export class PodAddresses {
  private readonly mapFile: string | undefined;
  private readonly onResolve: ((r: Resolution) => void) | undefined;
  private map: Record<string, string> = {};
  private mtimeMs = -1;
  private readonly seen = new Map<string, string>();

  constructor(mapFile?: string, onResolve?: (r: Resolution) => void) {
    this.mapFile = mapFile;
    this.onResolve = onResolve;
  }

  /** True when addresses come only from the map file. */
  get mapped(): boolean {
    return this.mapFile !== undefined;
  }

  addressOf(pod: PodAddressInfo, port: number): string | undefined {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    let r: Resolution;
    if (this.mapFile) {
      this.reload();
      const mapped = this.map[key];
      r =
        mapped && isLoopbackAddress(mapped)
          ? { pod: key, via: "map", address: mapped }
          : { pod: key, via: "none" };
    } else {
      r = pod.status?.podIP
        ? { pod: key, via: "pod-ip", address: `${pod.status.podIP}:${port}` }
        : { pod: key, via: "none" };
    }
    this.report(r);
    return r.via === "none" ? undefined : r.address;
  }

  private report(r: Resolution): void {
    if (!this.onResolve) return;
    const value = r.via === "none" ? "" : r.address;
    if (this.seen.get(r.pod) === value) return;
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(r.pod, value);
    this.onResolve(r);
  }

  private reload(): void {
    try {
      const st = statSync(this.mapFile!);
      if (st.mtimeMs === this.mtimeMs) return;
      const parsed = JSON.parse(readFileSync(this.mapFile!, "utf8")) as unknown;
      this.map = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, string>) : {};
      this.mtimeMs = st.mtimeMs;
    } catch {
      this.map = {};
    }
  }
}
