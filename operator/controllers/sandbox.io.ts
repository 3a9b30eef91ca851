// How the operator reaches the sandbox runtime in each sandbox pod (runtimes/sandbox): its
// address (PodAddresses: the pod IP, or a map of loopback processes standing in for fake
// pods), and the few calls the fleet controller makes, each with a token for that pod and
// the call's scope. Only pods whose owner chain was checked (owners.ts) become targets.
import { readFileSync, statSync } from "node:fs";
import type { CreateWorkspaceRequest, SandboxStatus, WorkspaceInfo } from "../../contracts/sandbox.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import { Audience, type TokenScope } from "../../contracts/tokens.ts";
import type { TokenSource } from "./keys.ts";

/** A sandbox pod the operator created, and where it listens. */
export interface SandboxTarget {
  namespace: string;
  pod: string;
  /** host:port */
  address: string;
}

export interface SandboxApi {
  status(target: SandboxTarget): Promise<SandboxStatus>;
  putWorkspace(
    target: SandboxTarget,
    id: string,
    ownerId?: string,
    source?: CreateWorkspaceRequest["source"],
  ): Promise<WorkspaceInfo>;
  listWorkspaces(target: SandboxTarget): Promise<WorkspaceInfo[]>;
  deleteWorkspace(target: SandboxTarget, id: string): Promise<void>;
  /** Flush to the store, then remove: "flushing" while the flush runs (ask again). */
  releaseWorkspace(target: SandboxTarget, id: string): Promise<"flushing" | "gone">;
  drain(target: SandboxTarget): Promise<void>;
  undrain(target: SandboxTarget): Promise<void>;
}

/** The scope each call of the operator needs (its audience is always the pod). */
export const SCOPE_OF: Record<keyof SandboxApi, TokenScope> = {
  status: "status",
  putWorkspace: "placement",
  listWorkspaces: "status",
  deleteWorkspace: "placement",
  releaseWorkspace: "placement",
  drain: "drain",
  undrain: "drain",
};

/** The token request of a call: the target pod as audience, the call's scope. */
export function tokenFor(
  target: SandboxTarget,
  call: keyof SandboxApi,
): { aud: string; scope: TokenScope[] } {
  return { aud: Audience.pod(target.namespace, target.pod), scope: [SCOPE_OF[call]] };
}

/** Largest answer read from a sandbox: its answers to the operator are a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** SandboxApi over the sandbox API's client, with a token per call. */
export class HttpSandboxApi implements SandboxApi {
  private readonly timeoutMs: number;
  private readonly tokens: TokenSource;

  constructor(options: { tokens: TokenSource; timeoutMs?: number }) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.tokens = options.tokens;
  }

  private client(target: SandboxTarget, call: keyof SandboxApi): SandboxClient {
    const { aud, scope } = tokenFor(target, call);
    return new SandboxClient({
      baseUrl: `http://${target.address}`,
      token: () => this.tokens.token(aud, scope),
      timeoutMs: this.timeoutMs,
      maxResponseBytes: MAX_ANSWER_BYTES,
    });
  }

  status(target: SandboxTarget): Promise<SandboxStatus> {
    return this.client(target, "status").status();
  }

  async putWorkspace(
    target: SandboxTarget,
    id: string,
    ownerId?: string,
    source?: CreateWorkspaceRequest["source"],
  ): Promise<WorkspaceInfo> {
    return (
      await this.client(target, "putWorkspace").createWorkspace(id, {
        ownerId,
        ...(source ? { source } : {}),
      })
    ).workspace;
  }

  listWorkspaces(target: SandboxTarget): Promise<WorkspaceInfo[]> {
    return this.client(target, "listWorkspaces").listWorkspaces();
  }

  releaseWorkspace(target: SandboxTarget, id: string): Promise<"flushing" | "gone"> {
    return this.client(target, "releaseWorkspace").releaseWorkspace(id);
  }

  deleteWorkspace(target: SandboxTarget, id: string): Promise<void> {
    return this.client(target, "deleteWorkspace").deleteWorkspace(id);
  }

  async drain(target: SandboxTarget): Promise<void> {
    await this.client(target, "drain").drain();
  }

  async undrain(target: SandboxTarget): Promise<void> {
    await this.client(target, "undrain").undrain();
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
