// Pod Security Standards "restricted": the security contexts every pod agentry makes
// runs with (non-root user, RuntimeDefault seccomp, no privilege escalation, no
// capabilities, read-only root filesystem with a writable emptyDir at /tmp).

/** The non-root user agentry's containers run as. */
export const RESTRICTED_UID = 65532;

export const restrictedPodSecurity = {
  runAsNonRoot: true,
  runAsUser: RESTRICTED_UID,
  runAsGroup: RESTRICTED_UID,
  fsGroup: RESTRICTED_UID,
  seccompProfile: { type: "RuntimeDefault" },
} as const;

export const restrictedContainerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
} as const;

/** The writable /tmp a read-only root filesystem needs: the volume and its mount. */
export const tmpVolume = { name: "tmp", emptyDir: {} } as const;
export const tmpMount = { name: "tmp", mountPath: "/tmp" } as const;
