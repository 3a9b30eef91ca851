// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: several
// replicas try; the holder renews every retry period; a replica takes over only when the
// record has not changed for a whole lease duration, measured on its own clock (no trust
// in other clocks); updates use optimistic concurrency (resourceVersion), so two replicas
// can never both win. A leader that cannot renew within the renew deadline steps down.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { ApiError, isConflict, isNotFound, type KubeClient, type KubeObject } from "./client.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../log.ts";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export function defaultIdentity(): string {
  return `${hostname()}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<LeaderOptions, "identity">>;
  private readonly log: Logger;
  private observed: { record: string; at: number } | undefined;
  /** When the lease another replica holds expires (by our clock), to try right then. */
  private heldUntil: number | undefined;
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> = Promise.resolve();
  private onStart: () => void = () => undefined;
  private onStop: () => void = () => undefined;

  constructor(client: KubeClient, options: LeaderOptions, log: Logger) {
    this.client = client;
    this.identity = options.identity ?? defaultIdentity();
    this.opts = {
      namespace: options.namespace,
      name: options.name,
      leaseDurationMs: options.leaseDurationMs ?? 15_000,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    this.log = log.child({ lease: `${options.namespace}/${options.name}`, identity: this.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; `onStartedLeading` runs once when elected, `onStoppedLeading` if the lease is lost. */
  run(onStartedLeading: () => void, onStoppedLeading: () => void): void {
    this.onStart = onStartedLeading;
    this.onStop = onStoppedLeading;
    this.inflight = this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    // A standby tries again every retry period, and also the moment the holder's lease
    // expires: a failover takes at most lease duration + retry period, not one more period.
    const untilExpiry = this.heldUntil === undefined ? 0 : this.heldUntil - Date.now() + 5;
    const delay = untilExpiry > 0 ? Math.min(this.opts.retryPeriodMs, untilExpiry) : this.opts.retryPeriodMs;
    this.timer = setTimeout(() => {
      this.inflight = this.tick();
    }, delay);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const ok = await this.tryAcquireOrRenew();
      // Released meanwhile (shutdown): never start leading after that.
      if (this.stopped) return;
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.log.info("became leader");
          this.onStart();
        }
      } else if (this.leading && Date.now() - this.lastRenew > this.opts.renewDeadlineMs) {
        this.stepDown("lost the lease");
      }
    } catch (err) {
      const msg = errorMessage(err);
      this.log.warn("lease update failed", { error: msg });
      if (this.leading && Date.now() - this.lastRenew > this.opts.renewDeadlineMs) {
        this.stepDown("could not renew the lease within the renew deadline");
      }
    }
    this.schedule();
  }

  private stepDown(why: string): void {
    this.leading = false;
    this.log.warn("stopped leading", { reason: why });
    this.onStop();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    this.heldUntil = undefined;
    const now = new Date();
    const seconds = Math.ceil(this.opts.leaseDurationMs / 1000);
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(
        "coordination.k8s.io/v1",
        "Lease",
        this.opts.namespace,
        this.opts.name,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created: Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: seconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      };
      try {
        await this.client.create(created);
        return true;
      } catch (e) {
        if (isConflict(e) || (e instanceof ApiError && e.status === 409)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseTransitions]);
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? "";
    const held = holder !== "" && holder !== this.identity;
    const expiresAt = this.observed.at + (spec.leaseDurationSeconds ?? seconds) * 1000;
    this.heldUntil = held ? expiresAt : undefined;
    if (held && Date.now() <= expiresAt) return false;
    const takingOver = holder !== this.identity;
    lease.spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: seconds,
      acquireTime: takingOver ? microTime(now) : (spec.acquireTime ?? microTime(now)),
      renewTime: microTime(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== "" ? 1 : 0),
    };
    try {
      await this.client.replace(lease);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Stops campaigning and, if leading, releases the lease so another replica takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A lease update in flight may still make us the holder: wait for it, then look.
    await this.inflight;
    this.leading = false;
    try {
      const lease = await this.client.get<Lease>(
        "coordination.k8s.io/v1",
        "Lease",
        this.opts.namespace,
        this.opts.name,
      );
      if (lease.spec?.holderIdentity !== this.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime() };
      await this.client.replace(lease);
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn("could not release the lease", {
        error: errorMessage(err),
      });
    }
  }
}
