// Issue 12, item 1: kill -9 the operator in the middle of reconciling many AgentRuntimes,
// change things while it is down, start it again: every AgentRuntime ends with exactly
// one Pod and one Service, no orphans, no duplicates. N is the 500
// (AGENTRY_CHAOS_AGENTS changes it).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import {
  AR,
  agent,
  agentName,
  bulkClient,
  convergence,
  createAgents,
  inParallel,
  setImage,
  waitConverged,
} from "./agents.ts";

const N = Number(process.env.AGENTRY_CHAOS_AGENTS ?? 500);
const LEASE = ["--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];

describe("operator killed mid-reconcile", () => {
  it(`converges ${N} AgentRuntimes to one Pod and one Service each after kill -9 and restart`, async (t) => {
    const namespace = await testNamespace(t);
    const client = bulkClient();
    const names = Array.from({ length: N }, (_, i) => agentName(i));
    await createAgents(client, namespace, names);

    const first = await startOperator(t, { namespaces: [namespace], args: LEASE });
    // Kill once about half the children and statuses are written: mid-flight by construction.
    const writes = await waitFor(
      "the operator to be half-way",
      async () => {
        const n = await first.counter("agentry_writes_total", { controller: "agentruntime" });
        return n >= N ? n : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 20 },
    );
    await first.kill("SIGKILL");
    const before = await convergence(client, namespace);
    t.diagnostic(`killed after ${writes} writes; ${before.notReady.length}/${N} not Ready yet`);
    assert.ok(before.notReady.length > 0, "the kill landed before the operator finished");

    // While no operator runs: deletions (normal and orphaning), a delete-and-recreate under
    // the same name, spec changes and new AgentRuntimes.
    const pick = (from: number) => names.slice(from, from + 5);
    const ref = (name: string) => ({ ...AR, metadata: { namespace, name } });
    await inParallel(pick(0), 5, (n) => client.delete(ref(n)));
    await inParallel(pick(5), 5, (n) => client.delete(ref(n), { propagation: "Orphan" }));
    await inParallel(pick(10), 5, async (n) => {
      await client.delete(ref(n), { propagation: "Orphan" });
      await waitFor(`${n} gone`, () =>
        client.get(AR.apiVersion, AR.kind, namespace, n).then(
          () => false,
          () => true,
        ),
      );
      await client.create(agent(namespace, n));
    });
    await inParallel(pick(N - 5), 5, (n) => setImage(client, namespace, n, "registry.example/agent:2"));
    await createAgents(
      client,
      namespace,
      Array.from({ length: 5 }, (_, i) => agentName(N + i)),
    );

    const restartedAt = Date.now();
    await startOperator(t, { namespaces: [namespace], args: LEASE });
    await waitConverged(client, namespace, 240_000);
    t.diagnostic(`converged ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart`);
    const agents = await client.list(AR.apiVersion, AR.kind, namespace);
    assert.equal(agents.items.length, N - 10 + 5);
  });
});
