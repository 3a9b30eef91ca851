// Workspace admission: the fleet it names must exist (checked when set; fleetRef is
// immutable), its git credentials Secret must exist, and a full fleet earns a warning; an
// idleTimeout must be more than zero (a warning when the fleet has no store), and an expireAt
// already passed earns a warning.
import type { Workspace } from "../../api/v1alpha1/index.ts";
import { fleetCapacity, liveWorkspaces } from "./sandboxfleet.ts";
import { checkSecretRefs, missing, newRefs, type SecretRef } from "./refs.ts";
import { Findings, type Rule } from "./types.ts";
import { validDurationMs } from "../cli/duration.ts";

function secretRefs(ws: Workspace | undefined): SecretRef[] {
  const ref = ws?.spec.source?.git?.credentialsSecretRef;
  return ref ? [{ field: "spec.source.git.credentialsSecretRef", name: ref.name }] : [];
}

export const validateWorkspace: Rule<Workspace> = async (ws, old, lookup) => {
  const f = new Findings();
  if (!ws) return f.verdict();
  const namespace = ws.metadata.namespace ?? "";
  const fleetName = ws.spec.fleetRef.name;
  if (!old || old.spec.fleetRef.name !== fleetName) {
    const fleet = await lookup.sandboxFleet(namespace, fleetName);
    if (!fleet) {
      missing(
        f,
        "spec.fleetRef.name",
        "SandboxFleet",
        fleetName,
        namespace,
        `create the fleet first or fix the name (kubectl get sandboxfleets -n ${namespace})`,
      );
    } else if (fleet.metadata.deletionTimestamp) {
      f.warn(
        "spec.fleetRef.name",
        `SandboxFleet "${fleetName}" is being deleted; this workspace will not be placed`,
      );
    } else {
      const others = liveWorkspaces(await lookup.workspacesOfFleet(namespace, fleetName)).filter(
        (w) => w.metadata.name !== ws.metadata.name,
      );
      const capacity = fleetCapacity(fleet.spec);
      if (others.length >= capacity)
        f.warn(
          "spec.fleetRef.name",
          `SandboxFleet "${fleetName}" is full (${others.length} workspaces, capacity ${capacity}); ` +
            "this workspace waits until the fleet's maxReplicas or maxWorkspacesPerSandbox grows",
        );
    }
  }
  await checkSecretRefs(f, namespace, newRefs(secretRefs(ws), old && secretRefs(old)), lookup);
  await checkLifetime(f, ws, old, lookup);
  return f.verdict();
};

/** idleTimeout: more than zero, and a warning when the fleet names no store; a past expireAt warns. */
async function checkLifetime(
  f: Findings,
  ws: Workspace,
  old: Workspace | undefined,
  lookup: Parameters<Rule<Workspace>>[2],
): Promise<void> {
  const idle = ws.spec.idleTimeout;
  if (idle !== undefined && idle !== old?.spec.idleTimeout) {
    if (validDurationMs(idle) === 0)
      f.deny(
        "spec.idleTimeout",
        "must be longer than 0s; leave it unset to never suspend the workspace for idleness",
      );
    else {
      const fleet = await lookup.sandboxFleet(ws.metadata.namespace ?? "", ws.spec.fleetRef.name);
      if (fleet && !fleet.spec.objectStore)
        f.warn(
          "spec.idleTimeout",
          `SandboxFleet "${fleet.metadata.name}" names no object store: idleTimeout takes effect only if the agentry install has a default store (suspending without one would lose the files)`,
        );
    }
  }
  const at = ws.spec.expireAt;
  if (at && at !== old?.spec.expireAt && Date.parse(at) <= Date.now())
    f.warn("spec.expireAt", `${at} has passed: the workspace is deleted at once`);
}
