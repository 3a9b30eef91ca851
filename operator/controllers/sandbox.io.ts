// How the operator reaches the sandbox runtime in each sandbox pod (runtimes/sandbox): its
// address (pod IP and port, or — for tests only — a mapping file that points pods at
// local processes), and the few calls the fleet controller makes.
import { readFileSync, statSync } from "node:fs";

export interface SandboxStatus {
  cpu: number;
  memory: number;
  workspaces: number;
  draining: boolean;
}

export interface SandboxApi {
  status(address: string): Promise<SandboxStatus>;
  putWorkspace(address: string, id: string, ownerId?: string): Promise<void>;
  deleteWorkspace(address: string, id: string): Promise<void>;
  drain(address: string): Promise<void>;
}

export class HttpSandboxApi implements SandboxApi {
  private readonly timeoutMs: number;
  private readonly token: string | undefined;

  constructor(options: { timeoutMs?: number; token?: string } = {}) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.token = options.token;
  }

  private async call(address: string, method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(`http://${address}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status >= 400 && !(method === "DELETE" && res.status === 404)) {
      const text = await res.text().catch(() => "");
      let detail = text;
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
      } catch {
        // plain text answer
      }
      throw new Error(`${method} ${path}: HTTP ${res.status}${detail ? `: ${detail.slice(0, 200)}` : ""}`);
    }
    return res;
  }

  async status(address: string): Promise<SandboxStatus> {
    const res = await this.call(address, "GET", "/status");
    return (await res.json()) as SandboxStatus;
  }

  async putWorkspace(address: string, id: string, ownerId?: string): Promise<void> {
    const res = await this.call(
      address,
      "PUT",
      `/workspaces/${encodeURIComponent(id)}`,
      ownerId ? { ownerId } : {},
    );
    await res.body?.cancel();
  }

  async deleteWorkspace(address: string, id: string): Promise<void> {
    const res = await this.call(address, "DELETE", `/workspaces/${encodeURIComponent(id)}`);
    await res.body?.cancel();
  }

  async drain(address: string): Promise<void> {
    const res = await this.call(address, "POST", "/drain");
    await res.body?.cancel();
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
