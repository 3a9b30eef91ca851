// The sandbox runtime's HTTP API shapes, shared by the server (server.ts) and the typed
// client (client.ts) that the operator and the tests use. Changing a name here changes
// the contract with the operator.

/** Workspace ids: DNS-subdomain-like; the operator uses "<namespace>.<name>". */
export const WORKSPACE_ID = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** GET /status */
export interface SandboxStatus {
  /** Fraction of the CPU limit in use, 0..1. */
  cpu: number;
  /** Fraction of the memory limit in use, 0..1. */
  memory: number;
  workspaces: number;
  draining: boolean;
  maxWorkspaces: number;
}

/** PUT /debug/load body (only with --allow-load-override): pins the reported load; null clears. */
export interface LoadOverride {
  cpu?: number | null;
  memory?: number | null;
}

/** A workspace as the API reports it. */
export interface WorkspaceInfo {
  id: string;
  ownerId: string | null;
  /** RFC 3339 time the workspace was created. */
  createdAt: string;
}

/** POST /workspaces/{id}/exec body. */
export interface ExecRequest {
  /** argv; run directly, never through a shell. */
  command: string[];
  timeoutSeconds?: number;
  env?: Record<string, string>;
  stdin?: string;
}

/** POST /workspaces/{id}/exec answer. */
export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
}
