import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../log.ts";
import { ApiError, type KubeClient, type KubeObject } from "./client.ts";
import { LeaderElector } from "./leader.ts";

/** One Lease in memory with optimistic concurrency; `freeze` makes a client hang (kill -9). */
function leaseStore() {
  let stored: KubeObject | undefined;
  let rv = 0;
  const copy = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;
  const client = () => {
    let frozen = false;
    const wait = () => (frozen ? new Promise<never>(() => undefined) : Promise.resolve());
    const c = {
      async get() {
        await wait();
        if (!stored) throw new ApiError(404, "NotFound", "not found");
        return copy(stored);
      },
      async create(obj: KubeObject) {
        await wait();
        if (stored) throw new ApiError(409, "AlreadyExists", "exists");
        stored = { ...copy(obj), metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
        return copy(stored);
      },
      async replace(obj: KubeObject) {
        await wait();
        if (obj.metadata.resourceVersion !== stored?.metadata.resourceVersion)
          throw new ApiError(409, "Conflict", "conflict");
        stored = { ...copy(obj), metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
        return copy(stored);
      },
    };
    return { client: c as unknown as KubeClient, freeze: () => (frozen = true) };
  };
  return { client, renewTime: () => Date.parse(String((stored?.spec as { renewTime: string }).renewTime)) };
}

describe("LeaderElector", () => {
  it("a standby takes over more than a lease after the last renewal, within lease + retry period of the kill", async (t) => {
    // On a clock the test moves (timers and Date), in 5 ms steps with the promises of each
    // step settled: the bounds hold exactly, however busy the machine is.
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: Date.parse("2026-01-01T00:00:00Z") });
    const settle = () => new Promise((r) => setImmediate(r));
    const advance = async (ms: number) => {
      for (let done = 0; done < ms; done += 5) {
        t.mock.timers.tick(5);
        for (let i = 0; i < 5; i++) await settle();
      }
    };
    const store = leaseStore();
    const options = {
      namespace: "ns",
      name: "lease",
      leaseDurationMs: 1000,
      renewDeadlineMs: 800,
      retryPeriodMs: 400,
    };
    const a = store.client();
    const b = store.client();
    const first = new LeaderElector(a.client, { ...options, identity: "a" }, silentLogger());
    const second = new LeaderElector(b.client, { ...options, identity: "b" }, silentLogger());
    first.run(
      () => undefined,
      () => undefined,
    );
    // The standby polls just before each renewal, so it sees the last one almost a retry
    // period late: the worst case, lease + retry period.
    await advance(380);
    assert.ok(first.isLeader);
    second.run(
      () => undefined,
      () => undefined,
    );
    t.after(() => second.release());
    // Kill the leader right after a renewal.
    await advance(1500);
    const renewed = store.renewTime();
    for (let waited = 0; store.renewTime() === renewed && waited < 3000; waited += 5) await advance(5);
    assert.notEqual(store.renewTime(), renewed, "the leader renewed");
    a.freeze();
    const killedAt = Date.now();
    const lastRenewal = store.renewTime();
    while (!second.isLeader && Date.now() - killedAt < 5000) await advance(5);
    const failover = Date.now() - killedAt;
    assert.ok(second.isLeader, "the standby took over");
    assert.ok(Date.now() - lastRenewal > 1000, "not before the lease expired");
    assert.ok(failover <= 1000 + 400 + 10, `failover took ${failover} ms`);
  });
});
