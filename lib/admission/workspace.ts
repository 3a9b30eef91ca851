// Workspace admission: the fleet it names must exist (checked when set; fleetRef is
// immutable), its git credentials Secret must exist, and a full fleet earns a warning.
import type { Workspace } from "../../api/v1alpha1/index.ts";
import { fleetCapacity, liveWorkspaces } from "./sandboxfleet.ts";
import { checkSecretRefs, missing, newRefs, type SecretRef } from "./refs.ts";
import { Findings, type Rule } from "./types.ts";

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
  return f.verdict();
};
