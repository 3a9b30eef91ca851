// Flags both runtimes (sandbox, agent) take alike: the trusted public keys, and which pod
// they are (downward API).
import { DEFAULT_TRUST_DIR, PodIdentityEnv, TRUST_DIR_ENV } from "../../contracts/tokens.ts";
import type { Flag } from "./flags.ts";

export const podFlags = {
  "trust-dir": {
    kind: "string",
    env: TRUST_DIR_ENV,
    help: "directory of trusted public keys (PEM); tokens signed by them open the API",
    default: DEFAULT_TRUST_DIR,
  },
  "pod-name": { kind: "string", env: PodIdentityEnv.NAME, help: "this pod's name (downward API)" },
  "pod-namespace": {
    kind: "string",
    env: PodIdentityEnv.NAMESPACE,
    help: "this pod's namespace (downward API)",
  },
} as const satisfies Record<string, Flag>;
