// A volume provisioner for the local control plane, which has no storage driver: for every
// PersistentVolumeClaim left Pending without a volume, a hostPath PersistentVolume under
// `dir` (one directory per claim), pre-bound to that claim so kube-controller-manager's
// binder binds exactly that pair. Released volumes (their claim deleted) are deleted with
// their directory. The pods behind claims (pods.ts) use the directory as the volume.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import * as k8s from "@kubernetes/client-node";

const PROVISIONED_BY = "agentry.dev/local-provisioner";

export interface LocalVolumesOptions {
  /** Where the volumes' directories live. */
  dir: string;
  kubeConfig?: k8s.KubeConfig;
  intervalMs?: number;
}

/** The PersistentVolume a claim gets: hostPath under `dir`, same size, modes and class, pre-bound. */
export function volumeFor(pvc: k8s.V1PersistentVolumeClaim, dir: string): k8s.V1PersistentVolume {
  const ns = pvc.metadata!.namespace!;
  const name = pvc.metadata!.name!;
  const hash = createHash("sha256")
    .update(`${ns}/${name}/${pvc.metadata!.uid ?? ""}`)
    .digest("hex")
    .slice(0, 8);
  const pvName = `local-${`${ns}-${name}`.slice(0, 200)}-${hash}`.toLowerCase().replace(/[^a-z0-9.-]/g, "-");
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: pvName, annotations: { "pv.kubernetes.io/provisioned-by": PROVISIONED_BY } },
    spec: {
      capacity: { storage: pvc.spec?.resources?.requests?.storage ?? "1Gi" },
      accessModes: pvc.spec?.accessModes?.length ? pvc.spec.accessModes : ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: pvc.spec?.storageClassName ?? "",
      volumeMode: pvc.spec?.volumeMode ?? "Filesystem",
      hostPath: { path: join(dir, ns, `${name}-${hash}`), type: "DirectoryOrCreate" },
      claimRef: {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        namespace: ns,
        name,
        uid: pvc.metadata!.uid,
      },
    },
  };
}

export class LocalVolumes {
  private readonly core: k8s.CoreV1Api;
  private readonly options: LocalVolumesOptions;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  lastError: string | undefined;

  private constructor(options: LocalVolumesOptions) {
    this.options = options;
    const kc = options.kubeConfig ?? new k8s.KubeConfig();
    if (!options.kubeConfig) kc.loadFromDefault();
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  static start(options: LocalVolumesOptions): LocalVolumes {
    const v = new LocalVolumes(options);
    v.timer = setInterval(() => {
      v.syncing = v.syncing.then(() => v.sync()).catch((err: unknown) => void (v.lastError = String(err)));
    }, options.intervalMs ?? 500);
    return v;
  }

  private async sync(): Promise<void> {
    const [claims, volumes] = await Promise.all([
      this.core.listPersistentVolumeClaimForAllNamespaces(),
      this.core.listPersistentVolume(),
    ]);
    const claimed = new Set(volumes.items.map((pv) => pv.spec?.claimRef?.uid).filter(Boolean));
    for (const pvc of claims.items) {
      if (pvc.status?.phase !== "Pending" || pvc.spec?.volumeName || pvc.metadata?.deletionTimestamp)
        continue;
      if (claimed.has(pvc.metadata?.uid)) continue;
      const pv = volumeFor(pvc, this.options.dir);
      await mkdir(pv.spec!.hostPath!.path, { recursive: true });
      await this.core.createPersistentVolume({ body: pv }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    }
    for (const pv of volumes.items) {
      if (pv.metadata?.annotations?.["pv.kubernetes.io/provisioned-by"] !== PROVISIONED_BY) continue;
      if (pv.status?.phase !== "Released") continue;
      await this.core.deletePersistentVolume({ name: pv.metadata.name! }).catch(() => undefined);
      if (pv.spec?.hostPath?.path?.startsWith(this.options.dir))
        await rm(pv.spec.hostPath.path, { recursive: true, force: true });
    }
    this.lastError = undefined;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
  }
}
