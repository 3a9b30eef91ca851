// The object store of each fleet, as the operator reaches it: the fleet's spec.objectStore
// (credentials from the Secret it names, in the fleet's namespace), else the install's
// default store (flags; its Secret in the operator's namespace), else none. Only the
// operator reads these Secrets (one `get` by name, never a list or watch); clients are
// cached per Secret resourceVersion and re-read after a short time.
import type { ObjectStoreSpec, SandboxFleet } from "../../api/v1alpha1/index.ts";
import type { KubeClient } from "../../lib/kube/client.ts";
import { S3Objects, s3sdk } from "../../lib/objects.ts";
import { errorMessage } from "../../lib/log.ts";

export interface DefaultStore {
  endpoint: string;
  bucket: string;
  prefix?: string;
  region: string;
  /** Secret in the operator's namespace with accessKeyId and secretAccessKey. */
  secretNamespace: string;
  secretName: string;
}

export interface ResolvedStore {
  objects: S3Objects;
  /** Where the store is, for messages (no credentials). */
  describe: string;
}

export class StoreUnavailable extends Error {}

interface Cached {
  at: number;
  version: string;
  store: ResolvedStore;
}

/** The store a fleet uses (its own, or the default); undefined when there is none. */
export function storeSpecOf(
  fleet: SandboxFleet,
  fallback: DefaultStore | undefined,
):
  | (Omit<DefaultStore, "secretNamespace" | "secretName"> & { secret: { namespace: string; name: string } })
  | undefined {
  const s: ObjectStoreSpec | undefined = fleet.spec.objectStore;
  if (s)
    return {
      endpoint: s.endpoint,
      bucket: s.bucket,
      ...(s.prefix ? { prefix: s.prefix } : {}),
      region: s.region,
      secret: { namespace: fleet.metadata.namespace!, name: s.credentialsSecret.name },
    };
  if (!fallback) return undefined;
  const { secretNamespace, secretName, ...rest } = fallback;
  return { ...rest, secret: { namespace: secretNamespace, name: secretName } };
}

export class FleetStores {
  private readonly client: KubeClient;
  private readonly fallback: DefaultStore | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly ttlMs: number;

  constructor(client: KubeClient, fallback: DefaultStore | undefined, ttlMs = 30_000) {
    this.client = client;
    this.fallback = fallback;
    this.ttlMs = ttlMs;
  }

  /** True when the fleet has a store (its own or the default). */
  configured(fleet: SandboxFleet): boolean {
    return storeSpecOf(fleet, this.fallback) !== undefined;
  }

  /** The fleet's store with its client; undefined when none; StoreUnavailable when its Secret is unusable. */
  async forFleet(fleet: SandboxFleet): Promise<ResolvedStore | undefined> {
    const spec = storeSpecOf(fleet, this.fallback);
    if (!spec) return undefined;
    const key = JSON.stringify(spec);
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.store;
    const { namespace, name } = spec.secret;
    let secret: { metadata: { resourceVersion?: string }; data?: Record<string, string> };
    try {
      secret = await this.client.request("GET", `/api/v1/namespaces/${namespace}/secrets/${name}`);
    } catch (err) {
      if (hit) return hit.store; // keep working on what was read before
      throw new StoreUnavailable(
        `cannot read the object store's credentials Secret ${namespace}/${name}: ${errorMessage(err)}`,
      );
    }
    const version = secret.metadata.resourceVersion ?? "";
    if (hit && hit.version === version) {
      hit.at = Date.now();
      return hit.store;
    }
    const value = (k: string) => {
      const v = secret.data?.[k];
      return v ? Buffer.from(v, "base64").toString("utf8").trim() : undefined;
    };
    const accessKeyId = value("accessKeyId");
    const secretAccessKey = value("secretAccessKey");
    if (!accessKeyId || !secretAccessKey)
      throw new StoreUnavailable(
        `Secret ${namespace}/${name} must have the keys accessKeyId and secretAccessKey (the object store's credentials)`,
      );
    hit?.store.objects.client.destroy();
    const { S3Client } = await s3sdk();
    const client = new S3Client({
      endpoint: spec.endpoint,
      region: spec.region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 2,
      // A pre-signed PUT cannot carry a checksum of a body the signer never sees.
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    const store: ResolvedStore = {
      objects: new S3Objects({
        client,
        bucket: spec.bucket,
        ...(spec.prefix ? { prefix: spec.prefix } : {}),
      }),
      describe: `bucket ${spec.bucket} at ${spec.endpoint}${spec.prefix ? ` under ${spec.prefix}/` : ""}`,
    };
    this.cache.set(key, { at: Date.now(), version, store });
    return store;
  }

  close(): void {
    for (const c of this.cache.values()) c.store.objects.client.destroy();
    this.cache.clear();
  }
}
