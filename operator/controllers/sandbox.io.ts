// How the operator reaches the sandbox runtime in each sandbox pod (runtimes/sandbox): its
// address (pod IP and port, or — for tests only — a mapping file that points pods at
// local processes), and the few calls the fleet controller makes.
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

/**
 * Resolves a sandbox pod to host:port. Normally the pod IP; when a map file is given
 * (`--sandbox-address-map`, a JSON object {"namespace/pod": "host:port"}), pods listed
 * there go to that address instead — the seam that lets tests run real sandbox runtime
 * processes on loopback for kwok's fake pods. The file is re-read when it changes.
 */
export class SandboxAddresses {
  private readonly mapFile: string | undefined;
  private map: Record<string, string> = {};
  private mtimeMs = -1;

  constructor(mapFile?: string) {
    this.mapFile = mapFile;
  }

  addressOf(pod: PodAddressInfo, port: number): string | undefined {
    if (this.mapFile) {
      this.reload();
      const mapped = this.map[`${pod.metadata.namespace}/${pod.metadata.name}`];
      if (mapped) return mapped;
    }
    return pod.status?.podIP ? `${pod.status.podIP}:${port}` : undefined;
  }

  private reload(): void {
    try {
      const st = statSync(this.mapFile!);
      if (st.mtimeMs === this.mtimeMs) return;
      this.map = JSON.parse(readFileSync(this.mapFile!, "utf8")) as Record<string, string>;
      this.mtimeMs = st.mtimeMs;
    } catch {
      this.map = {};
    }
  }
}
