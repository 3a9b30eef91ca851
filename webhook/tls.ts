// Where the serving certificate comes from, kept current while the webhook runs:
//  - SelfManagedTls: a CA and certificate in a Secret, made when missing and rotated
//    before expiry (replicas agree through the Secret's resourceVersion); the caBundle is
//    put into the webhook configurations before the new certificate is served.
//  - CertDirTls: tls.crt/tls.key mounted from a cert-manager Certificate, reloaded on change.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../lib/log.ts";
import { isConflict, isNotFound, type KubeClient, type KubeObject } from "../lib/kube/client.ts";
import { expiry, generateBundle, rotationReason, type CertBundle } from "./certs.ts";
import { errorMessage } from "../lib/log.ts";

export interface ServingCert {
  cert: string;
  key: string;
}

export interface TlsSource {
  /** The certificate to serve now, undefined until the first one is ready. */
  current(): ServingCert | undefined;
  /** Called with each new certificate to serve. */
  onChange(fn: (cert: ServingCert) => void): void;
  start(): Promise<void>;
  stop(): void;
}

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

const FIELDS: [keyof CertBundle, string][] = [
  ["caCert", "ca.crt"],
  ["caBundle", "ca-bundle.crt"],
  ["cert", "tls.crt"],
  ["key", "tls.key"],
];

const decode = (s: SecretObject | undefined): Partial<CertBundle> | undefined =>
  s?.data &&
  Object.fromEntries(
    FIELDS.filter(([, k]) => s.data?.[k]).map(([f, k]) => [f, Buffer.from(s.data![k]!, "base64").toString()]),
  );

abstract class Watched implements TlsSource {
  protected serving: ServingCert | undefined;
  private readonly listeners: ((c: ServingCert) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  protected abstract readonly intervalMs: number;
  protected abstract readonly log: Logger;

  current() {
    return this.serving;
  }
  onChange(fn: (c: ServingCert) => void) {
    this.listeners.push(fn);
  }
  protected serve(next: ServingCert): void {
    if (this.serving?.cert === next.cert && this.serving.key === next.key) return;
    this.serving = next;
    this.log.info("serving certificate loaded", { expires: expiry(next.cert).toISOString() });
    for (const fn of this.listeners) fn(next);
  }
  protected abstract tick(): Promise<void>;
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) =>
        this.log.error("certificate check failed", {
          error: errorMessage(err),
        }),
      );
    }, this.intervalMs);
    this.timer.unref();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

export interface SelfManagedOptions {
  secret: { namespace: string; name: string };
  hosts: string[];
  validityMs: number;
  rotateBeforeMs: number;
  /** Puts the caBundle into the webhook configurations; true when they already carried it. */
  publishCaBundle: (caBundle: string) => Promise<boolean>;
  onRotate?: (reason: string, expires: Date) => void;
}

export class SelfManagedTls extends Watched {
  protected readonly intervalMs: number;
  protected readonly log: Logger;
  private readonly client: KubeClient;
  private readonly opts: SelfManagedOptions;

  constructor(client: KubeClient, opts: SelfManagedOptions, log: Logger) {
    super();
    this.client = client;
    this.opts = opts;
    this.log = log;
    this.intervalMs = Math.max(500, Math.min(60_000, opts.rotateBeforeMs / 4));
  }

  private async read(): Promise<SecretObject | undefined> {
    const { namespace, name } = this.opts.secret;
    return this.client.get<SecretObject>("v1", "Secret", namespace, name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  }

  /** Makes a new bundle and stores it; undefined when another replica won the race. */
  private async rotate(
    secret: SecretObject | undefined,
    reason: string,
  ): Promise<Partial<CertBundle> | undefined> {
    const old = decode(secret);
    const bundle = generateBundle({ hosts: this.opts.hosts, validityMs: this.opts.validityMs }, old?.caCert);
    const data = Object.fromEntries(FIELDS.map(([f, k]) => [k, Buffer.from(bundle[f]).toString("base64")]));
    const { namespace, name } = this.opts.secret;
    const body: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace,
        labels: { "app.kubernetes.io/name": "agentry-webhook", "app.kubernetes.io/managed-by": "agentry" },
        ...(secret?.metadata.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      type: "kubernetes.io/tls",
      data,
    };
    try {
      await (secret ? this.client.replace(body) : this.client.create(body));
    } catch (err) {
      if (isConflict(err) || (err as { status?: number }).status === 409) return undefined;
      throw err;
    }
    this.log.info("webhook certificate rotated", { reason, expires: expiry(bundle.cert).toISOString() });
    this.opts.onRotate?.(reason, expiry(bundle.cert));
    return bundle;
  }

  protected async tick(): Promise<void> {
    const secret = await this.read();
    let bundle = decode(secret);
    const reason = rotationReason(bundle, this.opts.hosts, this.opts.rotateBeforeMs);
    if (reason) bundle = await this.rotate(secret, reason);
    if (!bundle?.caBundle || !bundle.cert || !bundle.key) return; // another replica rotates; read it next tick
    const trusted = await this.opts.publishCaBundle(bundle.caBundle);
    // Serve a new certificate only once the apiserver has had its CA for one interval;
    // the first certificate of a fresh process is served at once (nothing else would be).
    if (trusted || !this.serving) this.serve({ cert: bundle.cert, key: bundle.key });
  }
}

export class CertDirTls extends Watched {
  protected readonly intervalMs: number;
  protected readonly log: Logger;
  private readonly dir: string;
  private readonly publishCaBundle: ((ca: string) => Promise<boolean>) | undefined;

  constructor(
    dir: string,
    log: Logger,
    publishCaBundle?: (ca: string) => Promise<boolean>,
    intervalMs = 10_000,
  ) {
    super();
    this.dir = dir;
    this.log = log;
    this.publishCaBundle = publishCaBundle;
    this.intervalMs = intervalMs;
  }

  protected async tick(): Promise<void> {
    const [cert, key] = await Promise.all([
      readFile(join(this.dir, "tls.crt"), "utf8"),
      readFile(join(this.dir, "tls.key"), "utf8"),
    ]);
    if (this.publishCaBundle) {
      const ca = await readFile(join(this.dir, "ca.crt"), "utf8").catch(() => undefined);
      if (ca) await this.publishCaBundle(ca);
    }
    this.serve({ cert, key });
  }
}
