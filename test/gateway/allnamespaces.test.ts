// GET /v1/{plural}: a kind across the namespaces the caller may list it in. A caller with
// list in two namespaces (RBAC RoleBindings) sees exactly those objects, page by page with
// the gateway's continue token; a cluster-wide reader gets the apiserver's own list; a caller
// with no namespace gets 403.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testNamespace } from "../harness/cluster.ts";
import { grant, startGateway } from "./harness.ts";

const fleet = (name: string) => ({
  metadata: { name },
  spec: { template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 1 },
});

const mayList = (ns: string, user: string) =>
  grant(ns, user, { name: "fleet-lister", resources: ["sandboxfleets"], verbs: ["list"] });

describe("cross-namespace lists", () => {
  it("lists only the namespaces RBAC allows, paged across them", async (t) => {
    const [a, b, c] = [await testNamespace(t), await testNamespace(t), await testNamespace(t)];
    const user = `lister-${a}`;
    const gw = await startGateway(t, {
      tokens: {
        "lister-token": { user, groups: [], via: "token" },
        "nobody-token": { user: `nobody-${a}`, groups: [], via: "token" },
      },
    });
    for (const [ns, names] of [
      [a, ["a1", "a2"]],
      [b, ["b1"]],
      [c, ["c1", "c2"]],
    ] as const)
      for (const name of names)
        assert.equal(
          (await gw.call("POST", `/v1/namespaces/${ns}/sandboxfleets`, { body: fleet(name) })).status,
          201,
        );
    await mayList(a, user);
    await mayList(c, user);

    const as = { token: "lister-token" };
    const all = await gw.call("GET", "/v1/sandboxfleets", as);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.kind, "SandboxFleetList");
    const mine = (items: unknown) =>
      (items as { metadata: { namespace: string; name: string } }[])
        .map((i) => `${i.metadata.namespace}/${i.metadata.name}`)
        .filter((n) => [a, b, c].some((ns) => n.startsWith(`${ns}/`)))
        .sort();
    const want = [`${a}/a1`, `${a}/a2`, `${c}/c1`, `${c}/c2`].sort();
    assert.deepEqual(mine(all.body.items), want);

    // One object a page: every object once, none of namespace b.
    const paged: unknown[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const q = next ? `&continue=${encodeURIComponent(next)}` : "";
      const page = await gw.call("GET", `/v1/sandboxfleets?limit=1${q}`, as);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.ok((page.body.items as unknown[]).length <= 1);
      paged.push(...(page.body.items as unknown[]));
      next = (page.body.metadata as { continue?: string }).continue;
      pages++;
    } while (next && pages < 50);
    assert.deepEqual(mine(paged), want);

    const selected = await gw.call("GET", "/v1/sandboxfleets?labelSelector=nope%3Dx", as);
    assert.deepEqual(selected.body.items, []);

    const admin = await gw.call("GET", "/v1/sandboxfleets");
    assert.equal(admin.status, 200);
    assert.deepEqual(mine(admin.body.items), [...want, `${b}/b1`].sort());

    const nobody = await gw.call("GET", "/v1/sandboxfleets", { token: "nobody-token" });
    assert.equal(nobody.status, 403, JSON.stringify(nobody.body));
    const bad = await gw.call("GET", "/v1/sandboxfleets?labelSelector=a%20b", as);
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.detail), /labelSelector/);
    const put = await gw.call("PUT", "/v1/sandboxfleets", { body: {} });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET");
  });
});
