// The contract of an admission rule, shared by the webhook and the gateway: a rule gets the
// new object (undefined on DELETE), the old one (undefined on CREATE), a Lookup to read the
// objects it refers to, and the policy; it answers with a Verdict. Rules never write.
import type { AgentRuntime, Pipeline, SandboxFleet, Workspace } from "../../api/v1alpha1/index.ts";

/** What a rule decided: allowed or not, an HTTP-style code, a message for a person, warnings. */
export interface Verdict {
  allowed: boolean;
  /** 200 when allowed; 422 invalid, 403 forbidden by policy, 409 conflicts with other objects, 500 the check failed. */
  code: number;
  /** Empty when allowed; otherwise every problem, each naming its field and what to do. */
  message: string;
  /** Admission warnings: risky but valid settings (kubectl prints them as "Warning: ..."). */
  warnings: string[];
  /** When denied by rules: each problem with its field (the gateway lists them in its problem). */
  problems?: Problem[];
}

/**
 * Reads the objects a rule refers to, all in the namespace of the object under review. The
 * webhook reads the apiserver; the gateway may pass its own. Missing objects are `undefined`;
 * any other failure throws (and the rule's verdict becomes a deny saying the check failed).
 */
export interface Lookup {
  /**
   * Key names of a Secret (never its values), undefined when the Secret does not exist, or
   * null when Secrets are not checked (the webhook runs without permission to read them).
   */
  secretKeys(namespace: string, name: string): Promise<string[] | undefined | null>;
  workspace(namespace: string, name: string): Promise<Workspace | undefined>;
  sandboxFleet(namespace: string, name: string): Promise<SandboxFleet | undefined>;
  agentRuntime(namespace: string, name: string): Promise<AgentRuntime | undefined>;
  /** Workspaces of the namespace whose spec.fleetRef names this fleet. */
  workspacesOfFleet(namespace: string, fleet: string): Promise<Workspace[]>;
}

/** Settings of the cluster's admission policy (webhook flags; the gateway passes the same). */
export interface Policy {
  /**
   * Registries (optionally with a path prefix, e.g. `ghcr.io/acme`) images may come from;
   * empty allows any. Docker Hub images without a registry count as `docker.io`.
   */
  allowedRegistries: string[];
  /** Allow `:latest` (and images with neither tag nor digest, which mean latest). */
  allowLatest: boolean;
  /** A SandboxFleet with maxReplicas above this gets a warning. */
  largeFleetReplicas: number;
}

export const DEFAULT_POLICY: Policy = { allowedRegistries: [], allowLatest: false, largeFleetReplicas: 100 };

/** Annotation on a SandboxFleet that lets it be deleted while Workspaces still use it. */
export const ALLOW_DELETE_WITH_WORKSPACES = "agentry.dev/allow-delete-with-workspaces";

export type AdmissionObject = AgentRuntime | Pipeline | SandboxFleet | Workspace;

/** A rule of one kind. `object` is undefined on DELETE, `oldObject` on CREATE. */
export type Rule<T extends AdmissionObject> = (
  object: T | undefined,
  oldObject: T | undefined,
  lookup: Lookup,
  policy: Policy,
) => Promise<Verdict>;

/** One problem found by a rule: the field, what is wrong and what to do, and its code. */
export interface Problem {
  field: string;
  message: string;
  code: 403 | 409 | 422;
}

/** Collects problems and warnings while a rule runs, then turns them into one Verdict. */
export class Findings {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];

  deny(field: string, message: string, code: Problem["code"] = 422): void {
    this.problems.push({ field, message, code });
  }

  warn(field: string, message: string): void {
    this.warnings.push(`${field}: ${message}`);
  }

  verdict(): Verdict {
    if (this.problems.length === 0) return { allowed: true, code: 200, message: "", warnings: this.warnings };
    // The most specific code wins when problems differ: a conflict, then policy, then invalid.
    const codes = this.problems.map((p) => p.code);
    const code = codes.includes(409) ? 409 : codes.includes(403) ? 403 : 422;
    const message = this.problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("; ");
    return { allowed: false, code, message, warnings: this.warnings, problems: this.problems };
  }
}

export const allowed = (warnings: string[] = []): Verdict => ({
  allowed: true,
  code: 200,
  message: "",
  warnings,
});
