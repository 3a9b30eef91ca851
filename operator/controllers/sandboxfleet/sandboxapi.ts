// How the operator reaches the sandbox runtime in each sandbox pod (runtimes/sandbox): its
// address (lib/kube/podaddresses.ts), and the few calls the fleet controller makes, each with a token for that pod and
// the call's scope. Only pods whose owner chain was checked (lib/kube/owners.ts) become targets.
import type { CreateWorkspaceRequest, SandboxStatus, WorkspaceInfo } from "../../../contracts/sandbox.ts";
import { SandboxClient, type Released } from "../../../contracts/sandbox.client.ts";
import { Audience, type TokenScope } from "../../../contracts/tokens.ts";
import type { TokenSource } from "../keys.ts";

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
  releaseWorkspace(target: SandboxTarget, id: string): Promise<Released>;
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

  releaseWorkspace(target: SandboxTarget, id: string): Promise<Released> {
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
