// Issue 12, item 2: two operator replicas with the operator's default lease settings; the
// leader is killed with SIGKILL every 20 s for 3 minutes (a fresh standby started after
// each kill) while AgentRuntimes are created, changed and deleted all the time. Never two
// leaders at once; each takeover more than a lease duration after the last renewal (never
// a lease that may still be held) and within lease duration + retry period of the kill
// (+2 s for a loaded machine; lib/kube/leader.test.ts checks the exact bound); one lease transition per kill; in the end exactly one Pod and one Service
// per AgentRuntime, at its current spec, and none for deleted ones: no lost or doubled work.
// AGENTRY_CHAOS_KILLS and AGENTRY_CHAOS_KILL_EVERY (seconds) scale it down for a quick run.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../operator/config.ts";
import type { KubeObject } from "../../lib/kube/client.ts";
import { testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { AR, agent, agentName, bulkClient, setImage, waitConverged } from "./agents.ts";

const KILLS = Number(process.env.AGENTRY_CHAOS_KILLS ?? 9);
const EVERY_MS = Number(process.env.AGENTRY_CHAOS_KILL_EVERY ?? 20) * 1000;
const defaults = loadConfig([], {});
if (defaults === "help") throw new Error("unreachable");
const { leaseDurationMs: LEASE_MS, retryPeriodMs: RETRY_MS } = defaults;
/** Slack for a loaded machine: the standby's Lease reads and timers run late. */
const SLACK_MS = 2_000;

describe("leader churn", () => {
  it(`survives ${KILLS} leader kills ${EVERY_MS / 1000} s apart with CRs changing`, async (t) => {
    const namespace = await testNamespace(t);
    const client = bulkClient();
    const start = () => startOperator(t, { namespaces: [namespace] });
    let replicas: OperatorProcess[] = await Promise.all([start(), start()]);
    let maxLeaders = 0;
    /** Replicas reporting leadership (their agentry_leader gauge); also tracks the most at once. */
    const leaders = async () => {
      const flags = await Promise.all(replicas.map((r) => r.counter("agentry_leader").catch(() => 0)));
      const l = replicas.filter((_, i) => flags[i] === 1);
      maxLeaders = Math.max(maxLeaders, l.length);
      return l;
    };

    // Work arrives all the time: each second an AgentRuntime is created, changed or deleted.
    const live: string[] = [];
    let created = 0;
    let ops = 0;
    let churning = true;
    const writer = (async () => {
      while (churning) {
        const op = ops++ % 3;
        if (op === 0 || live.length < 3) {
          const name = agentName(created++);
          await client.create(agent(namespace, name));
          live.push(name);
        } else if (op === 1) {
          await setImage(client, namespace, live[ops % live.length]!, `registry.example/agent:${ops}`);
        } else {
          const name = live.splice(ops % live.length, 1)[0]!;
          await client.delete({ ...AR, metadata: { namespace, name } });
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
    t.after(async () => {
      churning = false;
      await writer.catch(() => undefined);
    });

    type LeaseSpec = {
      holderIdentity: string;
      acquireTime: string;
      renewTime: string;
      leaseTransitions: number;
    };
    const lease = async () =>
      (
        await client.get<KubeObject & { spec: LeaseSpec }>(
          "coordination.k8s.io/v1",
          "Lease",
          namespace,
          "agentry-operator",
        )
      ).spec;
    const time = (micro: string) => Date.parse(micro.replace(/(\.\d{3})\d*Z$/, "$1Z"));
    let [leader] = await waitFor("a first leader", async () => {
      const l = await leaders();
      return l.length === 1 ? l : undefined;
    });
    let lastKill = Date.now();
    const failovers: number[] = [];
    const sinceRenewal: number[] = [];
    for (let round = 0; round < KILLS; round++) {
      // Between kills, too, exactly one leader all the time (and it is the one to kill).
      await waitFor(
        "the next kill",
        async () => {
          const l = await leaders();
          if (l.length !== 1 || l[0] !== leader) throw new Error(`${l.length} leaders, not the elected one`);
          return Date.now() - lastKill >= EVERY_MS;
        },
        { intervalMs: 200, timeoutMs: EVERY_MS + 10_000 },
      );
      lastKill = Date.now();
      await leader!.kill("SIGKILL");
      const dead = await lease(); // the killed leader's last renewal
      replicas = replicas.filter((r) => r !== leader);
      // The replacement standby starts meanwhile; the surviving replica must take over alone.
      const fresh = start().then((r) => void replicas.push(r));
      [leader] = await waitFor(
        `a new leader after kill ${round + 1}`,
        async () => {
          const l = await leaders();
          return l.length === 1 ? l : undefined;
        },
        { timeoutMs: LEASE_MS + 4 * RETRY_MS + 10_000, intervalMs: 100 },
      );
      const seenAt = Date.now();
      const taken = await lease();
      assert.notEqual(taken.holderIdentity, dead.holderIdentity, "a new holder");
      // The new holder's acquireTime is when its winning attempt began (same machine clock).
      failovers.push(time(taken.acquireTime) - lastKill);
      sinceRenewal.push(seenAt - time(dead.renewTime));
      await fresh;
    }
    churning = false;
    await writer;
    t.diagnostic(`takeovers after the kill (ms): ${failovers.join(", ")}`);
    t.diagnostic(`new leader seen after the last renewal (ms): ${sinceRenewal.join(", ")}`);
    t.diagnostic(`${created} AgentRuntimes created, ${ops} writes in all`);

    assert.equal(maxLeaders, 1, "never two leaders at once");
    const max = LEASE_MS + RETRY_MS + SLACK_MS;
    for (const ms of failovers) assert.ok(ms <= max, `failover ${ms} ms after the kill > ${max} ms`);
    for (const ms of sinceRenewal)
      assert.ok(ms > LEASE_MS, `a leader ${ms} ms after the last renewal, before the lease expired`);
    assert.equal((await lease()).leaseTransitions, KILLS, "one lease transition per kill");
    await waitConverged(client, namespace, 60_000);
  });
});
