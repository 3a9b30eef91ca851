// SandboxFleet admission: image policy, Secret references, a capacity that still holds the
// fleet's workspaces when it shrinks, and no deletion while workspaces use the fleet unless
// the fleet carries the agentry.dev/allow-delete-with-workspaces annotation.
import type { SandboxFleet, SandboxFleetSpec, Workspace } from "../../api/v1alpha1/index.ts";
import { checkImage } from "./images.ts";
import { checkSecretRefs, envSecretRefs, newRefs } from "./refs.ts";
import { ALLOW_DELETE_WITH_WORKSPACES, Findings, type Rule } from "./types.ts";

/** Workspaces the fleet can hold at its largest. */
export const fleetCapacity = (
  spec: Pick<SandboxFleetSpec, "maxReplicas" | "maxWorkspacesPerSandbox">,
): number => spec.maxReplicas * spec.maxWorkspacesPerSandbox;

/** Workspaces that still count: those not already being deleted. */
export const liveWorkspaces = (items: Workspace[]): Workspace[] =>
  items.filter((w) => !w.metadata.deletionTimestamp);

function listNames(items: Workspace[], max = 5): string {
  const names = items.slice(0, max).map((w) => w.metadata.name ?? "?");
  return items.length > max ? `${names.join(", ")} and ${items.length - max} more` : names.join(", ");
}

const secretRefs = (fleet: SandboxFleet) => [
  ...envSecretRefs("spec.template", fleet.spec.template.env),
  ...(fleet.spec.objectStore
    ? [{ field: "spec.objectStore.credentialsSecret", name: fleet.spec.objectStore.credentialsSecret.name }]
    : []),
];

export const validateSandboxFleet: Rule<SandboxFleet> = async (fleet, old, lookup, policy) => {
  const f = new Findings();
  if (!fleet) {
    if (!old) return f.verdict();
    const namespace = old.metadata.namespace ?? "";
    const name = old.metadata.name ?? "";
    const using = liveWorkspaces(await lookup.workspacesOfFleet(namespace, name));
    if (using.length === 0) return f.verdict();
    if (old.metadata.annotations?.[ALLOW_DELETE_WITH_WORKSPACES] === "true") {
      f.warn(
        "metadata.annotations",
        `deleting SandboxFleet "${name}" as ${ALLOW_DELETE_WITH_WORKSPACES}=true allows; ${using.length} workspaces (${listNames(using)}) lose their sandboxes`,
      );
      return f.verdict();
    }
    f.deny(
      "",
      `SandboxFleet "${name}" still hosts ${using.length} Workspace(s) (${listNames(using)}); ` +
        `delete them first, or annotate the fleet with ${ALLOW_DELETE_WITH_WORKSPACES}="true" ` +
        `(kubectl annotate sandboxfleet ${name} -n ${namespace} ${ALLOW_DELETE_WITH_WORKSPACES}=true) to delete it anyway`,
      409,
    );
    return f.verdict();
  }

  const namespace = fleet.metadata.namespace ?? "";
  const spec = fleet.spec;
  if (!old || old.spec.template.image !== spec.template.image)
    checkImage(f, "spec.template.image", spec.template.image, policy);
  await checkSecretRefs(f, namespace, newRefs(secretRefs(fleet), old && secretRefs(old)), lookup);

  const capacity = fleetCapacity(spec);
  if (old && capacity < fleetCapacity(old.spec)) {
    const count = liveWorkspaces(await lookup.workspacesOfFleet(namespace, fleet.metadata.name ?? "")).length;
    if (count > capacity)
      f.deny(
        "spec.maxReplicas",
        `maxReplicas × maxWorkspacesPerSandbox = ${spec.maxReplicas} × ${spec.maxWorkspacesPerSandbox} = ${capacity} ` +
          `cannot hold the ${count} Workspaces that use this fleet; keep the product at ${count} or more, or delete workspaces first`,
        409,
      );
  }

  if (spec.maxReplicas > policy.largeFleetReplicas && (!old || old.spec.maxReplicas !== spec.maxReplicas))
    f.warn(
      "spec.maxReplicas",
      `${spec.maxReplicas} sandboxes is a very large fleet (above ${policy.largeFleetReplicas}); check your quota and node capacity`,
    );
  const limits = spec.template.resources?.limits ?? {};
  if (limits.cpu === undefined || limits.memory === undefined)
    f.warn(
      "spec.template.resources.limits",
      "cpu and memory limits are not both set; pressure thresholds are fractions of the limits, so the fleet cannot see sandbox load without them",
    );
  return f.verdict();
};
