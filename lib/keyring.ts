// Signing keys that rotate: the Ed25519 key ring of a program that signs data-plane tokens
// (the operator, the gateway), kept in a Secret of its own namespace. At most three keys:
// - current: signs;
// - next: made at the previous rotation and published since, so every pod already trusts it
//   when it starts signing (a rotation never waits for a ConfigMap to reach the pods);
// - previous: stopped signing at the last rotation and stays trusted for a grace period, so
//   tokens signed just before a rotation stay good until they expire.
// The rotation policy is pure (advance, trustedKeys); SecretKeyRing keeps the ring in the
// Secret, with optimistic concurrency so several replicas agree. Only public keys leave it.
import { createPrivateKey } from "node:crypto";
import { z } from "zod";
import type { TokenIssuer } from "../contracts/tokens.ts";
import { isConflict, isNotFound, type KubeClient, type KubeObject } from "./kube/client.ts";
import { stableStringify } from "./kube/names.ts";
import type { Logger } from "./log.ts";
import { generateSigningKey, TokenSigner } from "./tokens.ts";

const RingKey = z.object({
  kid: z.string().regex(/^[0-9a-f]{16}$/),
  privateKeyPem: z.string().min(1),
  publicKeyPem: z.string().min(1),
  /** RFC 3339: when the key took its role (made, started signing, or stopped signing). */
  since: z.string(),
});
type RingKey = z.output<typeof RingKey>;

export const KeyRing = z.object({
  version: z.literal(1),
  current: RingKey,
  next: RingKey,
  previous: RingKey.optional(),
});
export type KeyRing = z.output<typeof KeyRing>;

export interface RotationPolicy {
  /** How long a key signs before the next one takes over. */
  rotateEveryMs: number;
  /** How long a key that stopped signing stays trusted (at least the longest token lifetime). */
  graceMs: number;
}

/** A public key as published: `<kid>.pem` in a ConfigMap. */
export interface PublicKey {
  kid: string;
  pem: string;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

function freshKey(now: Date): RingKey {
  const k = generateSigningKey();
  return { kid: k.kid, privateKeyPem: k.privateKeyPem, publicKeyPem: k.publicKeyPem, since: iso(now) };
}

export function newKeyRing(now: Date): KeyRing {
  return { version: 1, current: freshKey(now), next: freshKey(now) };
}

/** The ring after `now`: rotated when current has signed long enough, previous dropped after its grace; undefined when unchanged. */
export function advance(ring: KeyRing, now: Date, policy: RotationPolicy): KeyRing | undefined {
  const t = now.getTime();
  let r = ring;
  if (t - Date.parse(r.current.since) >= policy.rotateEveryMs) {
    r = {
      version: 1,
      previous: { ...r.current, since: iso(now) },
      current: { ...r.next, since: iso(now) },
      next: freshKey(now),
    };
  }
  if (r.previous && t - Date.parse(r.previous.since) >= policy.graceMs) {
    const { previous: _gone, ...rest } = r;
    r = rest;
  }
  return r === ring ? undefined : r;
}

/** The public keys to trust at `now`: current, next, and previous within its grace. */
export function trustedKeys(ring: KeyRing, now: Date, policy: RotationPolicy): PublicKey[] {
  const keys = [ring.current, ring.next];
  if (ring.previous && now.getTime() - Date.parse(ring.previous.since) < policy.graceMs)
    keys.push(ring.previous);
  return keys.map((k) => ({ kid: k.kid, pem: k.publicKeyPem }));
}

/** Milliseconds until advance() would change the ring. */
export function untilNextChange(ring: KeyRing, now: Date, policy: RotationPolicy): number {
  const t = now.getTime();
  const times = [Date.parse(ring.current.since) + policy.rotateEveryMs];
  if (ring.previous) times.push(Date.parse(ring.previous.since) + policy.graceMs);
  return Math.max(0, Math.min(...times) - t);
}

/** Label on a key-ring Secret, naming its issuer: a Secret without it is never read as a ring or changed. */
export const LABEL_SIGNING_KEY = "agentry.dev/signing-key";
/** Label on a ConfigMap of published public keys, naming whose keys they are. */
export const LABEL_PUBLIC_KEYS = "agentry.dev/public-keys";
const MANAGED_BY = { "app.kubernetes.io/managed-by": "agentry" };
const RING_KEY = "keyring.json";

type SecretObject = KubeObject & { data?: Record<string, string> };
type ConfigMapObject = KubeObject & { data?: Record<string, string> };

export interface SecretKeyRingOptions {
  namespace: string;
  name: string;
  issuer: TokenIssuer;
  policy: RotationPolicy;
  log: Logger;
  now?: () => Date;
  /** Told of each write to the Secret that succeeded (the operator counts it in agentry_writes_total). */
  onWrite?: (kind: "Secret", verb: "create" | "update") => void;
}

/**
 * The key ring in Secret `namespace/name`: created if missing, rotated by whoever syncs
 * first (an update with the read resourceVersion; a replica that loses the race reads the
 * winner's ring). A Secret of that name that is not a ring of this issuer is never changed.
 */
export class SecretKeyRing {
  private readonly client: KubeClient;
  private readonly o: SecretKeyRingOptions;
  private readonly now: () => Date;
  private ring: KeyRing | undefined;
  private signerOf: { kid: string; signer: TokenSigner } | undefined;

  constructor(client: KubeClient, options: SecretKeyRingOptions) {
    this.client = client;
    this.o = options;
    this.now = options.now ?? (() => new Date());
  }

  get where(): string {
    return `Secret ${this.o.namespace}/${this.o.name}`;
  }

  /** Reads (or creates) the ring and rotates it when due. Throws when the Secret cannot be used. */
  async sync(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const now = this.now();
      let secret = await this.read();
      if (!secret) {
        const ring = newKeyRing(now);
        try {
          await this.client.create(this.secretOf(ring));
          this.o.onWrite?.("Secret", "create");
          this.ring = ring;
          this.o.log.info("created a signing key ring", { secret: this.where, kid: ring.current.kid });
          return;
        } catch (err) {
          if (!isConflict(err) || attempt > 2) throw err;
          secret = await this.read();
          if (!secret) continue;
        }
      }
      const ring = this.parse(secret);
      const advanced = advance(ring, now, this.o.policy);
      if (!advanced) {
        this.ring = ring;
        return;
      }
      try {
        const next = this.secretOf(advanced);
        next.metadata.resourceVersion = secret.metadata.resourceVersion;
        await this.client.replace(next);
        this.o.onWrite?.("Secret", "update");
        this.ring = advanced;
        if (advanced.current.kid !== ring.current.kid)
          this.o.log.info("rotated the signing key", {
            secret: this.where,
            kid: advanced.current.kid,
            previous: ring.current.kid,
          });
        return;
      } catch (err) {
        // Another replica rotated first: read its ring.
        if (!isConflict(err) || attempt > 2) throw err;
      }
    }
  }

  /** The signer of the current key; undefined before the first successful sync. */
  signer(): TokenSigner | undefined {
    const current = this.ring?.current;
    if (!current) return undefined;
    if (this.signerOf?.kid !== current.kid)
      this.signerOf = {
        kid: current.kid,
        signer: new TokenSigner(createPrivateKey(current.privateKeyPem), this.o.issuer),
      };
    return this.signerOf.signer;
  }

  /** The public keys to trust now (none before the first successful sync). */
  publicKeys(): PublicKey[] {
    return this.ring ? trustedKeys(this.ring, this.now(), this.o.policy) : [];
  }

  /** Milliseconds until the ring needs another sync to rotate or retire a key. */
  untilNextChange(): number {
    return this.ring ? untilNextChange(this.ring, this.now(), this.o.policy) : 0;
  }

  private async read(): Promise<SecretObject | undefined> {
    try {
      return await this.client.get<SecretObject>("v1", "Secret", this.o.namespace, this.o.name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private parse(secret: SecretObject): KeyRing {
    if (secret.metadata.labels?.[LABEL_SIGNING_KEY] !== this.o.issuer)
      throw new Error(
        `${this.where} exists but is not the ${this.o.issuer} key ring (no label ${LABEL_SIGNING_KEY}=${this.o.issuer}); it is left alone: delete it or name another Secret`,
      );
    const raw = secret.data?.[RING_KEY];
    const parsed = raw ? KeyRing.safeParse(safeJson(Buffer.from(raw, "base64").toString("utf8"))) : undefined;
    if (!parsed?.success)
      throw new Error(
        `${this.where} does not hold a valid key ring in ${RING_KEY}; delete it and a new ring is made (tokens signed by the old keys are then refused)`,
      );
    return parsed.data;
  }

  private secretOf(ring: KeyRing): SecretObject {
    return {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: this.o.name,
        namespace: this.o.namespace,
        labels: { ...MANAGED_BY, [LABEL_SIGNING_KEY]: this.o.issuer },
      },
      type: "Opaque",
      data: { [RING_KEY]: Buffer.from(JSON.stringify(ring)).toString("base64") },
    };
  }
}

/** ConfigMap data for public keys: one `<kid>.pem` each (what AGENTRY_TRUST_DIR holds). */
export function publicKeyFiles(keys: PublicKey[]): Record<string, string> {
  return Object.fromEntries(keys.map((k) => [`${k.kid}.pem`, k.pem]));
}

/** The public keys in ConfigMap data written by publicKeyFiles (anything else is ignored). */
export function publicKeysOf(data: Record<string, string> | undefined): PublicKey[] {
  return Object.entries(data ?? {})
    .filter(([file, pem]) => /^[0-9a-f]{16}\.pem$/.test(file) && pem.includes("PUBLIC KEY"))
    .map(([file, pem]) => ({ kid: file.slice(0, 16), pem }));
}

/**
 * Publishes `keys` in ConfigMap `namespace/name` (labelled with `owner`), creating it or
 * replacing its data; a ConfigMap of that name without the label is never changed.
 */
export async function publishPublicKeys(
  client: KubeClient,
  target: { namespace: string; name: string; owner: TokenIssuer },
  keys: PublicKey[],
): Promise<void> {
  const data = publicKeyFiles(keys);
  const desired: ConfigMapObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: target.name,
      namespace: target.namespace,
      labels: { ...MANAGED_BY, [LABEL_PUBLIC_KEYS]: target.owner },
    },
    data,
  };
  let current: ConfigMapObject | undefined;
  try {
    current = await client.get<ConfigMapObject>("v1", "ConfigMap", target.namespace, target.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!current) {
    await client.create(desired);
    return;
  }
  if (current.metadata.labels?.[LABEL_PUBLIC_KEYS] !== target.owner)
    throw new Error(
      `ConfigMap ${target.namespace}/${target.name} exists but is not ${target.owner}'s public keys (no label ${LABEL_PUBLIC_KEYS}=${target.owner}); it is left alone: delete it or name another ConfigMap`,
    );
  if (stableStringify(current.data ?? {}) === stableStringify(data)) return;
  desired.metadata.resourceVersion = current.metadata.resourceVersion;
  await client.replace(desired);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
