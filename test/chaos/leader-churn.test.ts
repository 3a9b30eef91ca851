// Issue 12, item 2 (scaled down, see README): two operator replicas; the leader is killed
// with SIGKILL every 5 s for 30 s (a fresh standby started each time) while AgentRuntimes
// are created and changed. Never two leaders at once, each failover within lease duration
// + retry period (+ slack for this loaded machine), and in the end exactly one Pod and
// one Service per AgentRuntime: no lost and no doubled work.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator, type OperatorProcess } from "../harness/operator.ts";
import { agentName, bulkClient, createAgents, setImage, waitConverged } from "./agents.ts";

const LEASE_S = 4;
const RETRY_S = 0.5;
const ARGS = [`--lease-duration=${LEASE_S}`, "--renew-deadline=3", `--retry-period=${RETRY_S}`];
const KILLS = 6;
const EVERY_MS = 5_000;

describe("leader churn", () => {
  it(`survives ${KILLS} leader kills ${EVERY_MS / 1000} s apart with CRs changing`, async (t) => {
    const namespace = await testNamespace(t);
    const client = bulkClient();
    const start = () => startOperator(t, { namespaces: [namespace], args: ARGS });
    let replicas: OperatorProcess[] = await Promise.all([start(), start()]);
    const leaders = async () => {
      const flags = await Promise.all(replicas.map((r) => r.counter("agentry_leader").catch(() => 0)));
      return replicas.filter((_, i) => flags[i] === 1);
    };
    let created = 0;
    const failovers: number[] = [];
    let maxLeaders = 0;
    for (let round = 0; round < KILLS; round++) {
      const [leader] = await waitFor("a leader", async () => {
        const l = await leaders();
        maxLeaders = Math.max(maxLeaders, l.length);
        return l.length === 1 ? l : undefined;
      });
      // Work arrives all the time: new AgentRuntimes and a changed one.
      await createAgents(client, namespace, [agentName(created++), agentName(created++)]);
      if (created > 4)
        await setImage(client, namespace, agentName(round), `registry.example/agent:${round + 2}`);
      const roundStart = Date.now();
      await waitFor("the round's interval", () => Date.now() - roundStart >= EVERY_MS, { intervalMs: 200 });
      await leader!.kill("SIGKILL");
      const killedAt = Date.now();
      // The replacement standby starts meanwhile; the surviving replica must take over alone.
      const fresh = start();
      replicas = replicas.filter((r) => r !== leader);
      await waitFor(
        "a new leader",
        async () => {
          const l = await leaders();
          maxLeaders = Math.max(maxLeaders, l.length);
          return l.length === 1;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      failovers.push(Date.now() - killedAt);
      replicas.push(await fresh);
    }
    t.diagnostic(`failovers (ms): ${failovers.join(", ")}`);
    assert.equal(maxLeaders, 1, "never two leaders at once");
    const bound = (LEASE_S + RETRY_S) * 1000 + 3_000;
    for (const ms of failovers) assert.ok(ms <= bound, `failover ${ms} ms > ${bound} ms`);
    await waitConverged(client, namespace, 60_000);
  });
});
