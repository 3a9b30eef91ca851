// agentry.dev/v1alpha1: the four kinds, their schemas, types and condition constants.
import type { z } from "zod";
import { AgentRuntimeKind, type AgentRuntimeSpec, type AgentRuntimeStatus } from "./agentruntime.ts";
import { PipelineKind, type PipelineSpec, type PipelineStatus } from "./pipeline.ts";
import { SandboxFleetKind, type SandboxFleetSpec, type SandboxFleetStatus } from "./sandboxfleet.ts";
import { WorkspaceKind, type WorkspaceSpec, type WorkspaceStatus } from "./workspace.ts";

export * from "./common.ts";
export * from "./agentruntime.ts";
export * from "./pipeline.ts";
export * from "./sandboxfleet.ts";
export * from "./workspace.ts";
export type { KindDefinition, PrinterColumn, CelRule } from "./kind.ts";
export { NAMESPACE_PATTERN, QUALIFIED_NAME_PATTERN, LABEL_VALUE_PATTERN } from "./kind.ts";

/** Every kind of the API, in the order they are documented. */
export const KINDS = [AgentRuntimeKind, PipelineKind, SandboxFleetKind, WorkspaceKind] as const;

/**
 * Object metadata as agentry reads it: the one ObjectMeta of the project (lib/kube's
 * KubeObject uses it too). Timestamps are the JSON's RFC 3339 strings.
 */
export type ObjectMeta = {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  /** Dropped by the informers; never read. */
  managedFields?: unknown;
};

export type OwnerReference = {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
};

/** A kind of agentry.dev/v1alpha1 as typed objects: a type (not an interface), so it is a KubeObject. */
type Resource<Kind extends string, Spec, Status> = {
  apiVersion: "agentry.dev/v1alpha1";
  kind: Kind;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
};

export type AgentRuntime = Resource<"AgentRuntime", AgentRuntimeSpec, AgentRuntimeStatus>;
export type Pipeline = Resource<"Pipeline", PipelineSpec, PipelineStatus>;
export type SandboxFleet = Resource<"SandboxFleet", SandboxFleetSpec, SandboxFleetStatus>;
export type Workspace = Resource<"Workspace", WorkspaceSpec, WorkspaceStatus>;
export type AgentryObject = AgentRuntime | Pipeline | SandboxFleet | Workspace;

/** Spec schemas by kind, e.g. for applying defaults: `specSchemas.Pipeline.parse(input)`. */
export const specSchemas = {
  AgentRuntime: AgentRuntimeKind.spec,
  Pipeline: PipelineKind.spec,
  SandboxFleet: SandboxFleetKind.spec,
  Workspace: WorkspaceKind.spec,
} satisfies Record<AgentryObject["kind"], z.ZodType>;
