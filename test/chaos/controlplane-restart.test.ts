// Issue 12, item 3: restart etcd and kube-apiserver under load. The operator and the
// gateway reconnect by themselves (watches resumed or re-listed after 410 Gone), nothing
// crashes, the operator converges within 30 s of the apiserver being ready again, and an
// SSE client of the gateway learns of every change: each write one by one, except those
// made while the gateway could not watch, which arrive as their latest version.
// Uses a control plane of its own: the shared one must never be restarted.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { KubeObject } from "../../lib/kube/client.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { installCrds } from "../harness/install.ts";
import { startOperator } from "../harness/operator.ts";
import { waitFor } from "../harness/process.ts";
import { ADMIN } from "../gateway/harness.ts";
import { openSse, type SseClient } from "../gateway/sse.ts";
import { agentName, bulkClient, convergence, createAgents, setImage, waitConverged } from "./agents.ts";
import { cutProxy } from "./cut-proxy.ts";
import { alive, gatewayWithTokens } from "./processes.ts";

const NS = "default";
const TOKEN = "chaos-restart-token";
const WS = { apiVersion: "agentry.dev/v1alpha1", kind: "Workspace" } as const;
const workspace = (name: string) => ({
  ...WS,
  metadata: { name, namespace: NS },
  spec: { fleetRef: { name: "fleet" } },
});

interface Seen {
  type: string;
  name: string;
  rv: string;
  labels: Record<string, string>;
}

describe("etcd and kube-apiserver restart under load", () => {
  it("operator and gateway reconnect, converge within 30 s, and SSE loses no change", async (t) => {
    // Inside the run's control-plane dir, so that its logs are kept when the run fails.
    const shared = process.env.AGENTRY_CONTROLPLANE_DIR;
    const cp = await ControlPlane.start({
      nodes: 1,
      schedulerArgs: ["-v=2"], // bindings in its log, should Pods not start after the restart
      ...(shared ? { dir: join(shared, "restart-cp") } : {}),
    });
    t.after(() => cp.stop({ keep: shared !== undefined }));
    installCrds(cp.kubeconfig);
    const client = bulkClient(cp.kubeconfig);
    const operator = await startOperator(t, {
      namespaces: [NS],
      kubeconfig: cp.kubeconfig,
      leaderElect: false,
    });

    // The gateway reaches the apiserver through a proxy the test can hold shut a little
    // longer than the outage, so that some changes happen, for certain, while the gateway
    // cannot watch (the test's and the operator's own connections are direct).
    const proxy = await cutProxy(t, Number(new URL(cp.server).port));
    const gatewayKubeconfig = join(cp.dir, "kubeconfig-gateway");
    const config = await readFile(cp.kubeconfig, "utf8");
    await writeFile(gatewayKubeconfig, config.replace(cp.server, `https://127.0.0.1:${proxy.port}`), {
      mode: 0o600,
    });
    const gw = await gatewayWithTokens(
      t,
      { [TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } },
      { KUBECONFIG: gatewayKubeconfig, AGENTRY_SSE_HEARTBEAT: "1" },
    );
    t.after(() => writeFile(join(cp.logDir, "gateway.log"), `${gw.logs.join("\n")}\n`));

    // The SSE client, resuming with Last-Event-ID whenever its stream ends, as a real one does.
    const url = `${gw.url}/v1/watch/namespaces/${NS}/workspaces`;
    const streams: SseClient[] = [await openSse(url, TOKEN)];
    t.after(() => streams.forEach((s) => s.close()));
    const resumeIfEnded = async () => {
      const last = streams.at(-1)!;
      if (!last.ended) return;
      const lastId = streams.flatMap((s) => s.events()).findLast((e) => e.id)?.id;
      streams.push(await openSse(url, TOKEN, lastId));
    };
    const seen = (): Seen[] =>
      streams.flatMap((s) =>
        s.events().map((e) => {
          const o = JSON.parse(e.data ?? "{}") as Partial<KubeObject>;
          return {
            type: e.event ?? "",
            name: o.metadata?.name ?? "",
            rv: o.metadata?.resourceVersion ?? "",
            labels: o.metadata?.labels ?? {},
          };
        }),
      );
    const events = (name: string, type?: string) =>
      seen().filter((e) => e.name === name && (!type || e.type === type));
    const values = () => events("counter").flatMap((e) => (e.labels.n ? [Number(e.labels.n)] : []));

    for (const name of ["counter", "gap-changed", "gap-deleted"]) await client.create(workspace(name));
    await waitFor("the three Workspaces ADDED on the stream", () =>
      ["counter", "gap-changed", "gap-deleted"].every((n) => events(n, "ADDED").length === 1),
    );
    await createAgents(
      client,
      NS,
      Array.from({ length: 20 }, (_, i) => agentName(i)),
    );
    await waitFor("20 AgentRuntimes converged", async () => {
      const c = await convergence(client, NS);
      return c.notReady.length === 0 && c.problems.length === 0;
    });

    // Load: a write every 50 ms (label n=1,2,3...), remembering which succeeded.
    const succeeded: number[] = [];
    let n = 0;
    let loading = true;
    const load = (async () => {
      while (loading) {
        const value = ++n;
        await client
          .mergePatch(
            { ...WS, metadata: { namespace: NS, name: "counter" } },
            { metadata: { labels: { n: String(value) } } },
          )
          .then(
            () => succeeded.push(value),
            () => undefined,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    t.after(async () => {
      loading = false;
      await load;
    });
    await waitFor("some writes before the outage", () => succeeded.length >= 10);
    // A write whose event is on the stream: everything up to it was delivered live.
    const beforeOutage = succeeded.at(-1)!;
    await waitFor("the stream to keep up with the load", () => values().includes(beforeOutage));
    const t0 = Date.now();
    proxy.cut();
    const cutAt = Date.now();
    await cp.component("kube-apiserver").stop("SIGTERM");
    await cp.component("etcd").stop("SIGTERM");
    cp.restart("etcd");
    cp.restart("kube-apiserver");
    await cp.waitReady(90_000);
    const back = Date.now();
    t.diagnostic(`etcd and kube-apiserver down and back in ${back - t0} ms`);

    // Work for the operator, which must converge within 30 s of this moment.
    await createAgents(
      client,
      NS,
      Array.from({ length: 10 }, (_, i) => agentName(20 + i)),
    );
    for (let i = 0; i < 5; i++) await setImage(client, NS, agentName(i), "registry.example/agent:2");

    // Changes the gateway can only learn of after the fact (it still cannot reach the
    // apiserver): a modified, an added and a deleted Workspace, and some counter writes.
    const atBack = succeeded.length;
    await client.mergePatch(
      { ...WS, metadata: { namespace: NS, name: "gap-changed" } },
      { metadata: { labels: { gap: "changed" } } },
    );
    await client.create(workspace("gap-added"));
    await client.delete({ ...WS, metadata: { namespace: NS, name: "gap-deleted" } });
    await waitFor("counter writes while the gateway is cut off", () => succeeded.length >= atBack + 3);
    proxy.open();
    const cutMs = Date.now() - cutAt;
    const reopened = succeeded.length;

    // The operator's part within 30 s of the apiserver being ready: exactly the right Pod
    // and Service for every AgentRuntime and a status of its current generation. Ready
    // also needs kube-scheduler and kwok to recover, which are not ours (below).
    let last = await convergence(client, NS);
    await waitFor(
      "the operator's work within 30 s of the apiserver being ready",
      async () => {
        last = await convergence(client, NS);
        return last.problems.length === 0 && last.unobserved.length === 0;
      },
      { timeoutMs: Math.max(30_000 - (Date.now() - back), 0), intervalMs: 250 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${[...last.problems, ...last.why].slice(0, 10).join("; ")}`);
    });
    t.diagnostic(`operator done ${Date.now() - back} ms after the apiserver was ready`);
    // kube-scheduler sometimes stops scheduling after the restart (its log says "Scheduler
    // cache is corrupted"; the new Pods never get a node nor a PodScheduled condition). It
    // is not ours: if it is stuck, restart it, then the Pods must start and every
    // AgentRuntime, following its Pod, be Ready.
    const unscheduled = async () =>
      (await client.list<KubeObject & { spec: { nodeName?: string } }>("v1", "Pod", NS)).items.filter(
        (p) => !p.spec.nodeName,
      ).length;
    const scheduled = await waitFor("the new Pods scheduled", async () => (await unscheduled()) === 0, {
      timeoutMs: 30_000,
    }).catch(() => false);
    if (!scheduled) {
      t.diagnostic(
        `kube-scheduler stuck after the restart (${await unscheduled()} Pods without a node): restarted`,
      );
      await cp.component("kube-scheduler").stop();
      cp.restart("kube-scheduler");
    }
    await waitConverged(client, NS, 60_000);
    t.diagnostic(`all Ready ${Date.now() - back} ms after the apiserver was ready`);

    await waitFor("writes after the gateway is back", () => succeeded.length >= reopened + 10);
    loading = false;
    await load;
    const lastWrite = String(succeeded.at(-1)!);

    // Every change reaches the client; the stream may end and be resumed meanwhile.
    await waitFor(
      "every change on the event stream",
      async () => {
        await resumeIfEnded();
        return (
          values().includes(Number(lastWrite)) &&
          events("gap-changed", "MODIFIED").some((e) => e.labels.gap === "changed") &&
          events("gap-added", "ADDED").length > 0 &&
          events("gap-deleted", "DELETED").length > 0
        );
      },
      { timeoutMs: 30_000 },
    ).catch((err: Error) => {
      const summary = seen()
        .map((e) => `${e.type} ${e.name}@${e.rv}${e.labels.n ? ` n=${e.labels.n}` : ""}`)
        .join(", ");
      throw new Error(`${err.message}; last write n=${lastWrite}; seen: ${summary}`);
    });
    t.diagnostic(`${succeeded.length} successful writes of ${n}; ${streams.length} SSE connection(s)`);

    // No event twice, none out of order, no reset.
    const all = seen();
    assert.ok(!all.some((e) => e.type === "reset"), "no reset: the client's position stayed known");
    const ids = streams.flatMap((s) => s.events().map((e) => e.id));
    assert.equal(new Set(ids).size, ids.length, "no event id twice");
    const versions = all.map((e) => `${e.type} ${e.name}@${e.rv}`);
    assert.equal(new Set(versions).size, versions.length, "no object version twice");
    const v = values();
    assert.ok(
      v.every((x, i) => i === 0 || x >= v[i - 1]!),
      `counter versions in order: ${v.join(",")}`,
    );
    assert.equal(events("gap-added", "ADDED").length, 1, "gap-added ADDED once");
    assert.equal(events("gap-deleted", "DELETED").length, 1, "gap-deleted DELETED once");

    // Counter writes: each on the stream, except one run of consecutive ones made while the
    // gateway could not watch, which the catch-up after 410 Gone delivers as its latest
    // version (the write right after the run); before and after that run, one by one.
    const delivered = new Set(v);
    const missing = succeeded.flatMap((x, i) => (delivered.has(x) ? [] : [i]));
    t.diagnostic(
      `counter writes delivered as a later version: ${missing.map((i) => succeeded[i]).join(",")}`,
    );
    assert.ok(
      missing.every((i, k) => k === 0 || i === missing[k - 1]! + 1),
      `one run of coalesced writes only: ${missing.map((i) => succeeded[i]).join(",")}`,
    );
    assert.ok(
      missing.every((i) => succeeded[i]! > beforeOutage),
      "every write before the outage arrived one by one",
    );
    assert.ok(delivered.has(Number(lastWrite)), "the last write is on the stream");

    assert.ok(alive(operator.child), "the operator did not exit");
    assert.ok(alive(gw.child), "the gateway did not exit");
    assert.ok(
      operator.logs.some((l) => /watch failed|list failed/.test(String(l.message))),
      "the operator noticed the outage",
    );
    // While it cannot reach the apiserver the gateway retries its watches every few seconds,
    // not in a tight loop (it did: about a hundred attempts and warnings a second). It runs
    // nine: the event stream's, its read cache's four kinds and the four RBAC kinds; each
    // backs off from 0.5 s, doubling to 5 s (at most 5 attempts in its first 8 s, then one
    // every 5 s), plus some slack for other calls.
    const watches = 9;
    t.diagnostic(`gateway cut off for ${cutMs} ms: ${proxy.refused} connections refused`);
    assert.ok(
      proxy.refused <= 10 + watches * (5 + cutMs / 5000),
      `${proxy.refused} connection attempts in ${cutMs} ms`,
    );
  });
});
