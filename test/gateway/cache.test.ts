// Issue 22: lists and gets from the gateway's cache. Every answer of the cache path is
// compared with the direct path (a gateway without the cache, which asks the apiserver as
// the caller) over a corpus of queries: label selectors, pages of every size, continue
// tokens carried from one path to the other, namespaces the caller may and may not read,
// across namespaces; the metrics prove the cache answered. Then: a revoked RoleBinding
// stops being honoured within the access cache's TTL (and at once when the RBAC watch sees
// it), and a read right after a create, update or delete through the gateway sees it.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { Writable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import winston from "winston";
import { KINDS } from "../../api/v1alpha1/index.ts";
import { RbacWatch } from "../../gateway/auth/rbacwatch.ts";
import { ReadCache } from "../../gateway/cache/readcache.ts";
import { KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { kubeConfig, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { render } from "../chart/helm.ts";
import { metricSum } from "../harness/metrics.ts";
import { grant, startGateway, type Answer, type Gateway } from "./harness.ts";

const AR = "agentry.dev/v1alpha1";
const READER = "reader-token";
const IMAGE = "ghcr.io/agentry-dev/agent:0.1.0";

const agent = (ns: string, name: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: AR,
  kind: "AgentRuntime",
  metadata: { name, namespace: ns, labels },
  spec: { image: IMAGE },
});

const counter = (gw: Gateway, name: string, labels: Record<string, string>) =>
  metricSum(gw.metricsUrl, name, labels);
const fromCache = (gw: Gateway) => counter(gw, "agentry_gateway_reads_total", { source: "cache" });

/** Grants `user` get and list of AgentRuntimes in `ns`. */
const mayRead = (ns: string, user: string) =>
  grant(ns, user, { name: "agent-reader", resources: ["agentruntimes"], verbs: ["get", "list"] });

interface Walk {
  status: number;
  /** Every item of every page, in order (or the problem of the first page that failed). */
  items: unknown[];
  pages: number;
  /** Each page's metadata.remainingItemCount. */
  remaining: (number | undefined)[];
  problem?: unknown;
}

/**
 * Follows a list's continue tokens to the end (`first` continues an earlier page), as the
 * caller of `token` (the admin when undefined).
 */
async function walk(gw: Gateway, token: string | undefined, path: string, first?: string): Promise<Walk> {
  const items: unknown[] = [];
  const remaining: (number | undefined)[] = [];
  let next = first;
  let pages = 0;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const r: Answer = await gw.call(
      "GET",
      next ? `${path}${sep}continue=${encodeURIComponent(next)}` : path,
      {
        token,
      },
    );
    pages++;
    if (r.status !== 200) return { status: r.status, items, pages, remaining, problem: r.body.detail };
    items.push(...(r.body.items as unknown[]));
    const metadata = r.body.metadata as { continue?: string; remainingItemCount?: number };
    remaining.push(metadata.remainingItemCount);
    next = metadata.continue;
    if (!next) return { status: 200, items, pages, remaining };
    assert.ok(pages < 100, `${path}: more than 100 pages`);
  }
}

/**
 * What two walks must agree on: the status, the problem and every item in order; not the
 * number of pages (with a label selector the apiserver may end on an empty page, the cache
 * does not). With `namespaces`, only their items (lists across namespaces hold others' too).
 */
const outcome = (w: Walk, namespaces?: string[]) => ({
  status: w.status,
  problem: w.problem,
  items: namespaces
    ? w.items.filter((i) => namespaces.includes((i as KubeObject).metadata.namespace ?? ""))
    : w.items,
});

describe("gateway cache against the apiserver", () => {
  it("answers a corpus of lists and gets exactly as the direct path does", async (t) => {
    const [a, b, denied] = [await testNamespace(t), await testNamespace(t), await testNamespace(t)];
    const user = `cache-reader-${a}`;
    const tokens = { [READER]: { user, groups: [], via: "token" as const } };
    const cached = await startGateway(t, { tokens });
    const direct = await startGateway(t, { tokens, cache: false });
    await mayRead(a, user);
    await mayRead(b, user);
    const admin = new KubeClient(kubeConfig());
    const tiers = ["web", "db", "cache"];
    for (const [ns, n] of [
      [a, 13],
      [b, 5],
      [denied, 4],
    ] as const)
      for (let i = 0; i < n; i++) {
        const labels: Record<string, string> = { app: `app-${i % 4}`, tier: tiers[i % 3]! };
        if (i % 5 === 0) labels.canary = "true";
        await admin.create(
          agent(ns, `agent-${String(i).padStart(2, "0")}-${["x", "a", "m"][i % 3]}`, labels),
        );
      }
    // One write through the cached gateway: once reads see it, the objects made before it are in.
    assert.equal(
      (
        await cached.call("POST", `/v1/namespaces/${b}/agentruntimes`, {
          body: agent(b, "zz-last", { app: "app-0" }),
        })
      ).status,
      201,
    );

    const selectors = [
      undefined,
      "tier=web",
      "tier!=web",
      "tier in (web,db)",
      "tier notin (db)",
      "canary",
      "!canary",
      "app=app-1,tier=db",
      "app",
      "nothing=here",
    ];
    const queries: string[] = [];
    for (const sel of selectors)
      for (const limit of [undefined, 1, 2, 5, 500]) {
        const q = [
          ...(sel !== undefined ? [`labelSelector=${encodeURIComponent(sel)}`] : []),
          ...(limit !== undefined ? [`limit=${limit}`] : []),
        ].join("&");
        queries.push(q ? `?${q}` : "");
      }

    const cacheBefore = await fromCache(cached);
    let cacheReads = 0;
    for (const who of [undefined, READER])
      for (const ns of [a, b, denied])
        for (const q of queries) {
          const path = `/v1/namespaces/${ns}/agentruntimes${q}`;
          const [viaCache, viaApi] = [await walk(cached, who, path), await walk(direct, who, path)];
          assert.deepEqual(outcome(viaCache), outcome(viaApi), `${who ?? "admin"} ${path}`);
          // Without a selector the pages are the same, and say alike how many objects follow.
          if (!q.includes("labelSelector"))
            assert.deepEqual(viaCache.remaining, viaApi.remaining, `remainingItemCount of ${path}`);
          if (viaCache.status === 200) cacheReads += viaCache.pages;
          else assert.equal(viaCache.status, 403, `${path}: the reader may not read ${denied}`);
        }
    // Across namespaces: the admin's cluster-wide list, and the reader's fan-out over a and b.
    for (const who of [undefined, READER])
      for (const q of queries) {
        const path = `/v1/agentruntimes${q}`;
        const [viaCache, viaApi] = [await walk(cached, who, path), await walk(direct, who, path)];
        assert.equal(viaCache.status, 200, JSON.stringify(viaCache.problem));
        const mine = [a, b, denied];
        assert.deepEqual(outcome(viaCache, mine), outcome(viaApi, mine), `${who ?? "admin"} ${path}`);
        if (who === READER)
          assert.ok(
            viaCache.items.every((i) => [a, b].includes((i as KubeObject).metadata.namespace ?? "")),
            "the reader sees a and b only",
          );
        cacheReads += viaCache.pages;
      }
    assert.equal(
      (await fromCache(cached)) - cacheBefore,
      cacheReads,
      "every allowed page came from the cache",
    );
    assert.equal(await fromCache(direct), 0);

    // Gets: each object, with its ETag and If-None-Match; a missing one; one the reader may not get.
    const names = (await admin.list<KubeObject>(AR, "AgentRuntime", a)).items.map((o) => o.metadata.name!);
    for (const who of [undefined, READER])
      for (const [ns, name] of [...names.map((n) => [a, n]), [a, "no-such-agent"], [denied, "agent-00-x"]]) {
        const path = `/v1/namespaces/${ns}/agentruntimes/${name}`;
        // One request id for both: a problem's body names it.
        const same = { token: who, headers: { "x-request-id": "compare-get" } };
        const [viaCache, viaApi] = [
          await cached.call("GET", path, same),
          await direct.call("GET", path, same),
        ];
        assert.equal(viaCache.status, viaApi.status, path);
        assert.deepEqual(viaCache.body, viaApi.body, path);
        assert.equal(viaCache.headers.get("etag"), viaApi.headers.get("etag"));
        assert.equal(viaCache.headers.get("content-type"), viaApi.headers.get("content-type"));
        assert.equal(viaCache.headers.get("x-request-id"), "compare-get");
        if (viaCache.status === 200) {
          const again = await cached.call("GET", path, {
            token: who,
            headers: { "if-none-match": viaCache.headers.get("etag")! },
          });
          assert.equal(again.status, 304);
        }
      }
    assert.ok(
      (await counter(cached, "agentry_gateway_reads_total", { verb: "get", source: "cache" })) >=
        2 * names.length,
    );
    // The requests the cache answered are counted as the apiserver path counts them.
    const gets = { method: "GET", route: "/v1/namespaces/{namespace}/agentruntimes/{name}" };
    for (const status of ["200", "404", "403"])
      assert.equal(
        await counter(cached, "agentry_gateway_requests_total", { ...gets, status }),
        await counter(direct, "agentry_gateway_requests_total", { ...gets, status }),
        `GETs of one object answered ${status}`,
      );
  });

  it("continues pages across the two paths, and asks the apiserver when the list changed since", async (t) => {
    const ns = await testNamespace(t);
    const cached = await startGateway(t);
    const direct = await startGateway(t, { cache: false });
    const base = `/v1/namespaces/${ns}/agentruntimes`;
    for (let i = 0; i < 6; i++)
      assert.equal(
        (await cached.call("POST", base, { body: agent(ns, `a${i}`, { i: String(i) }) })).status,
        201,
      );
    const all = await walk(direct, undefined, base);
    assert.equal(all.items.length, 6);

    // A token from the cache, continued by the apiserver path, and the other way round.
    const fromCachePage = await cached.call("GET", `${base}?limit=2`);
    const token1 = (fromCachePage.body.metadata as { continue: string }).continue;
    const rest1 = await walk(direct, undefined, `${base}?limit=2`, token1);
    assert.deepEqual([...(fromCachePage.body.items as unknown[]), ...rest1.items], all.items);
    const fromApiPage = await direct.call("GET", `${base}?limit=2`);
    const token2 = (fromApiPage.body.metadata as { continue: string }).continue;
    const rest2 = await walk(cached, undefined, `${base}?limit=2`, token2);
    assert.deepEqual([...(fromApiPage.body.items as unknown[]), ...rest2.items], all.items);

    // The list changes after the first page: the rest is the apiserver's, of the same snapshot.
    const page1 = await cached.call("GET", `${base}?limit=3`);
    const token = (page1.body.metadata as { continue: string }).continue;
    const changedBefore = await counter(cached, "agentry_gateway_reads_total", { reason: "changed" });
    const patched = await cached.call("PATCH", `${base}/a4`, {
      body: { metadata: { labels: { touched: "yes" } } },
    });
    assert.equal(patched.status, 200);
    const rest = await walk(cached, undefined, `${base}?limit=3`, token);
    const restDirect = await walk(direct, undefined, `${base}?limit=3`, token);
    assert.deepEqual(outcome(rest), outcome(restDirect));
    assert.deepEqual(
      [...(page1.body.items as unknown[]), ...rest.items],
      all.items,
      "the snapshot of page 1",
    );
    assert.equal(
      (await counter(cached, "agentry_gateway_reads_total", { reason: "changed" })) - changedBefore,
      rest.pages,
      "the pages after the change came from the apiserver",
    );
  });
});

describe("gateway cache: authorisation", () => {
  const revocation = async (t: TestContext, rbacWatch: boolean, ttlMs: number) => {
    const ns = await testNamespace(t);
    const user = `revoked-${ns}`;
    const gw = await startGateway(t, {
      tokens: { [READER]: { user, groups: [], via: "token" } },
      accessTtlMs: ttlMs,
      rbacWatch,
    });
    await mayRead(ns, user);
    const list = () => gw.call("GET", `/v1/namespaces/${ns}/agentruntimes`, { token: READER });
    await waitFor("the reader to be allowed", async () => (await list()).status === 200);
    const before = await fromCache(gw);
    assert.equal((await list()).status, 200);
    assert.equal((await fromCache(gw)) - before, 1, "answered from the cache");
    const r = await kubectl(["delete", "rolebinding", "agent-reader", "-n", ns]);
    assert.equal(r.code, 0, r.stderr);
    const revokedAt = Date.now();
    await waitFor("the revocation to be honoured", async () => (await list()).status === 403, {
      timeoutMs: ttlMs + 20_000,
      intervalMs: 50,
    });
    return Date.now() - revokedAt;
  };

  it("honours a revoked RoleBinding within the access cache's TTL", async (t) => {
    const ttlMs = 4_000;
    const took = await revocation(t, false, ttlMs);
    t.diagnostic(`revocation honoured after ${took} ms (TTL ${ttlMs} ms, no RBAC watch)`);
    // The TTL plus what the apiserver's own RBAC cache and one request may take.
    assert.ok(took <= ttlMs + 2_000, `honoured after ${took} ms`);
  });

  it("honours it at once when the RBAC watch sees the change, whatever the TTL", async (t) => {
    const ttlMs = 120_000;
    const took = await revocation(t, true, ttlMs);
    t.diagnostic(`revocation honoured after ${took} ms (TTL ${ttlMs} ms, RBAC watch on)`);
    assert.ok(took < 10_000, `honoured after ${took} ms, not at once`);
  });
});

describe("gateway cache: read-your-writes", () => {
  for (const waitMs of [30_000, 0])
    it(`a read right after a create, update or delete sees it (cache wait ${waitMs} ms)`, async (t) => {
      const ns = await testNamespace(t);
      const gw = await startGateway(t, { cacheWaitMs: waitMs });
      const base = `/v1/namespaces/${ns}/agentruntimes`;
      const names = async () =>
        ((await gw.call("GET", base)).body.items as KubeObject[]).map(
          (o) => `${o.metadata.name}@${o.metadata.resourceVersion}`,
        );
      const before = await fromCache(gw);
      let reads = 0;
      const rounds = 10;
      for (let i = 0; i < rounds; i++) {
        const created = await gw.call("POST", base, { body: agent(ns, `w${i}`, { round: String(i) }) });
        assert.equal(created.status, 201);
        const rv = (created.body.metadata as { resourceVersion: string }).resourceVersion;
        assert.ok((await names()).includes(`w${i}@${rv}`), `round ${i}: the list holds the new object`);
        const got = await gw.call("GET", `${base}/w${i}`);
        assert.equal(got.headers.get("etag"), `"${rv}"`);

        const patched = await gw.call("PATCH", `${base}/w${i}`, {
          body: { metadata: { labels: { seen: "1" } } },
        });
        assert.equal(patched.status, 200);
        const rv2 = (patched.body.metadata as { resourceVersion: string }).resourceVersion;
        assert.ok((await names()).includes(`w${i}@${rv2}`), `round ${i}: the list holds the update`);

        const current = (await gw.call("GET", `${base}/w${i}`)).body as KubeObject;
        assert.equal(current.metadata.resourceVersion, rv2);
        current.metadata.labels = { replaced: "yes" };
        const replaced = await gw.call("PUT", `${base}/w${i}`, { body: current });
        assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
        const rv3 = (replaced.body.metadata as { resourceVersion: string }).resourceVersion;
        const sel = await gw.call("GET", `${base}?labelSelector=replaced%3Dyes`);
        assert.deepEqual(
          (sel.body.items as KubeObject[]).map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`),
          [`w${i}@${rv3}`],
        );

        assert.equal((await gw.call("DELETE", `${base}/w${i}`)).status, 200);
        assert.ok(
          !(await names()).some((n) => n.startsWith(`w${i}@`)),
          `round ${i}: the list lost the object`,
        );
        assert.equal((await gw.call("GET", `${base}/w${i}`)).status, 404);
        reads += 7;
      }
      const served = (await fromCache(gw)) - before;
      t.diagnostic(`${served} of ${reads} reads answered from the cache`);
      // Waiting long enough, the cache answers all but the get after the delete (the 404 is
      // the apiserver's: the cache does not say what it does not hold).
      if (waitMs > 0) assert.equal(served, reads - rounds);
    });
});

describe("gateway cache: the chart's RBAC", () => {
  it("lets the gateway's ServiceAccount fill the cache and watch RBAC objects, with nothing more", async (t) => {
    const ns = await testNamespace(t);
    const role = (await render()).find(
      (d) => d.kind === "ClusterRole" && d.metadata.name === "agentry-gateway",
    );
    assert.ok(role, "the chart's gateway ClusterRole");
    const rbac = role.rules!.filter((r) => r.apiGroups.includes("rbac.authorization.k8s.io"));
    assert.deepEqual(rbac, [
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
        verbs: ["list", "watch"],
      },
    ]);
    // The chart's rules, under a name of this test, bound to a ServiceAccount of its namespace.
    const name = `gw-${ns}`;
    const manifest = [
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "gateway", namespace: ns } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name },
        rules: role.rules,
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name },
        subjects: [{ kind: "ServiceAccount", name: "gateway", namespace: ns }],
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      },
    ];
    const applied = await kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: manifest }),
    );
    assert.equal(applied.code, 0, applied.stderr);
    t.after(
      async () =>
        void (await kubectl(["delete", "clusterrole,clusterrolebinding", name, "--ignore-not-found"])),
    );
    const token = await kubectl(["create", "token", "gateway", "-n", ns]);
    assert.equal(token.code, 0, token.stderr);
    const cluster = kubeConfig().getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "gateway", token: token.stdout.trim() }],
      contexts: [{ name: "gateway", cluster: cluster.name, user: "gateway" }],
      currentContext: "gateway",
    });
    const asGateway = new KubeClient(kc);
    // Failures (a 403 among them) are logged as warnings: there must be none.
    const warnings: string[] = [];
    const log = winston.createLogger({
      level: "warn",
      transports: [
        new winston.transports.Stream({
          stream: new Writable({
            objectMode: true,
            write(info: object, _encoding, done) {
              warnings.push(JSON.stringify(info));
              done();
            },
          }),
        }),
      ],
    });
    const cache = new ReadCache(KINDS);
    const changes: (string | undefined)[] = [];
    const watch = new RbacWatch((namespace) => changes.push(namespace));
    t.after(() => Promise.all([cache.stop(), watch.stop()]).then(() => undefined));
    cache.start(asGateway, log);
    watch.start(asGateway, log);
    await waitFor("the cache to fill as the gateway", () => cache.synced);
    await waitFor("the RBAC watch to start", () => changes.length >= 4);
    await mayRead(ns, "someone");
    await waitFor("the RoleBinding seen", () => changes.includes(ns));
    assert.deepEqual(warnings, []);
  });
});
