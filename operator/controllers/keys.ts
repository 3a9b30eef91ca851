// The operator's side of data-plane trust: its own rotating signing key (lib/keyring.ts, a
// Secret in its namespace), the gateway's published public keys (a ConfigMap in the gateway's
// namespace), the bundle of public keys every sandbox and agent pod trusts (trust.ts puts it
// in each namespace), and the short-lived tokens the operator sends with its own calls.
import { createHash } from "node:crypto";
import type { TokenScope } from "../../contracts/tokens.ts";
import { countWrite } from "../../lib/kube/children.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import type { Metrics } from "../../lib/kube/metrics.ts";
import {
  LABEL_PUBLIC_KEYS,
  SecretKeyRing,
  publicKeysOf,
  type PublicKey,
  type RotationPolicy,
} from "../../lib/keyring.ts";
import type { Logger } from "../../lib/log.ts";
import { errorMessage } from "../../lib/log.ts";

/** Lifetime of the token of one operator call; a token is reused while half of it is left. */
export const CALL_TOKEN_TTL_SECONDS = 120;

/** Signs tokens for the operator's calls to pods. */
export interface TokenSource {
  token(aud: string, scope: TokenScope[], ttlSeconds?: number): Promise<string>;
}

export interface OperatorKeysOptions {
  /** The operator's key-ring Secret. */
  secret: { namespace: string; name: string };
  policy: RotationPolicy;
  /** The ConfigMap where the gateway publishes its public keys. */
  gateway: { namespace: string; configMap: string };
  log: Logger;
  now?: () => Date;
  /** agentry_writes_total counts the key ring's writes (controller "keys"). */
  metrics?: Pick<Metrics, "writes">;
}

export class OperatorKeys implements TokenSource {
  private readonly client: KubeClient;
  private readonly o: OperatorKeysOptions;
  private readonly ring: SecretKeyRing;
  private readonly now: () => Date;
  private gatewayKeys: PublicKey[] = [];
  private lastVersion = "";
  private readonly cache = new Map<string, { token: string; kid: string; renewAt: number }>();

  constructor(client: KubeClient, options: OperatorKeysOptions) {
    this.client = client;
    this.o = options;
    this.now = options.now ?? (() => new Date());
    this.ring = new SecretKeyRing(client, {
      ...options.secret,
      issuer: "agentry-operator",
      policy: options.policy,
      log: options.log,
      ...(options.now ? { now: options.now } : {}),
      onWrite: (kind, verb) => options.metrics && countWrite(options.metrics, "keys", kind, verb),
    });
  }

  /**
   * Reads (creates, rotates) the key ring and the gateway's keys; true when the bundle of
   * public keys changed. Errors of one source leave the last good keys of it in place.
   */
  async sync(): Promise<boolean> {
    try {
      await this.ring.sync();
    } catch (err) {
      this.o.log.error("the signing key ring cannot be used; calls to pods fail until it can", {
        secret: this.ring.where,
        error: errorMessage(err),
      });
    }
    await this.syncGateway();
    const version = this.version();
    const changed = version !== this.lastVersion;
    this.lastVersion = version;
    return changed;
  }

  private async syncGateway(): Promise<void> {
    const { namespace, configMap } = this.o.gateway;
    try {
      const cm = await this.client.get<KubeObject & { data?: Record<string, string> }>(
        "v1",
        "ConfigMap",
        namespace,
        configMap,
      );
      this.gatewayKeys =
        cm.metadata.labels?.[LABEL_PUBLIC_KEYS] === "agentry-gateway" ? publicKeysOf(cm.data) : [];
    } catch (err) {
      if (isNotFound(err)) this.gatewayKeys = [];
      else
        this.o.log.warn("could not read the gateway's public keys; keeping the last ones", {
          configMap: `${namespace}/${configMap}`,
          error: errorMessage(err),
        });
    }
  }

  /** Every public key pods must trust: the operator's (next and previous included) and the gateway's. */
  bundle(): PublicKey[] {
    const byKid = new Map<string, PublicKey>();
    for (const k of [...this.ring.publicKeys(), ...this.gatewayKeys]) byKid.set(k.kid, k);
    return [...byKid.values()].sort((a, b) => a.kid.localeCompare(b.kid));
  }

  /** The kid of the key that signs now (undefined before the ring could be read). */
  get signingKid(): string | undefined {
    return this.ring.signer()?.kid;
  }

  /** Changes whenever the bundle or the signing key changes. */
  version(): string {
    const h = createHash("sha256");
    for (const k of this.bundle()) h.update(`${k.kid}\n`);
    h.update(this.signingKid ?? "");
    return h.digest("hex").slice(0, 16);
  }

  /** Milliseconds until the ring must be synced again to rotate or retire a key. */
  untilNextChange(): number {
    return this.ring.untilNextChange();
  }

  /**
   * A token for an operator call to `aud` allowing `scope`, signed with the current key and
   * reused while more than half of its life is left.
   */
  async token(aud: string, scope: TokenScope[], ttlSeconds = CALL_TOKEN_TTL_SECONDS): Promise<string> {
    const signer = this.signer();
    const key = `${ttlSeconds} ${aud} ${scope.join(",")}`;
    const now = this.now().getTime();
    const hit = this.cache.get(key);
    if (hit && hit.kid === signer.kid && now < hit.renewAt) return hit.token;
    const token = await signer.sign({ aud, scope, ttlSeconds });
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { token, kid: signer.kid, renewAt: now + (ttlSeconds * 1000) / 2 });
    return token;
  }

  /** A newly signed token (never a reused one), e.g. for a Secret that pods read for a while. */
  async freshToken(aud: string, scope: TokenScope[], ttlSeconds: number): Promise<string> {
    return this.signer().sign({ aud, scope, ttlSeconds });
  }

  private signer() {
    const signer = this.ring.signer();
    if (!signer)
      throw new Error(
        `no signing key: the key ring in ${this.ring.where} could not be read or created (see the operator log)`,
      );
    return signer;
  }
}
