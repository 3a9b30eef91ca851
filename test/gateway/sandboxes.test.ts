// GET /v1/namespaces/{ns}/sandboxfleets/{name}/sandboxes, end to end: the real operator runs a
// fleet whose sandbox pods are backed by real sandbox runtime processes on loopback; the
// gateway lists them with the load each reports, the workspaces each holds (as the Workspaces'
// status says), a pod that carries the fleet's labels but is not the fleet's (never called),
// pods it cannot reach; RBAC (`get sandboxfleets`) decides who may ask, and every answer is
// audited.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { SandboxInfo as Sandbox } from "../../gateway/dataplane/sandboxes.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { createCR, kubectl, waitFor } from "../harness/cluster.ts";
import { grant } from "../harness/rbac.ts";
import { startDataPlane } from "./dataplane-env.ts";
import { ADMIN, startGateway } from "./harness.ts";

const VIEWER = { user: "fleet-viewer", groups: [], via: "token" as const };
const NOBODY = { user: "fleet-nobody", groups: [], via: "token" as const };

/** A Pod with the fleet's labels whose controller is a ConfigMap: not the fleet's (and not adoptable). */
const strayPod = (ns: string, uid: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "stray",
    namespace: ns,
    labels: { "agentry.dev/sandbox-fleet": "fleet", "app.kubernetes.io/managed-by": "agentry" },
    ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "stray-owner", uid, controller: true }],
  },
  spec: { containers: [{ name: "sandbox", image: "registry.example/sandbox:1" }] },
});

describe("the fleet's sandboxes route", () => {
  it("lists each sandbox with its load and workspaces, calls only the fleet's pods, and is audited", async (t) => {
    const { ns, gw, pods, ring } = await startDataPlane(t, {
      tokens: { "viewer-token": VIEWER, "nobody-token": NOBODY },
    });
    const applied = await kubectl(
      ["apply", "-f", "-"],
      grant(ns, "fleet-viewer", { user: VIEWER.user }, [{ resources: ["sandboxfleets"], verbs: ["get"] }]),
    );
    assert.equal(applied.code, 0, applied.stderr);
    await createCR(ns, "SandboxFleet", "fleet", {
      template: { image: "registry.example/sandbox:1" },
      minReplicas: 1,
      samplingInterval: "250ms",
    });
    await createCR(ns, "Workspace", "ws-a", { fleetRef: { name: "fleet" }, ownerId: "alice" });
    await createCR(ns, "Workspace", "ws-b", { fleetRef: { name: "fleet" }, ownerId: "bob" });
    const path = `/v1/namespaces/${ns}/sandboxfleets/fleet/sandboxes`;
    const list = async (token?: string) => {
      const r = await gw.call("GET", path, token ? { token } : {});
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.items as Sandbox[];
    };
    const holder = (items: Sandbox[], ws: string) => items.find((s) => s.placed?.some((p) => p.name === ws));

    // Both workspaces placed (one owner each: two sandboxes), as their status says.
    const items = await waitFor(
      "both workspaces on the sandboxes the route lists",
      async () => {
        const got = await list();
        const placed = await kubectl([
          "get",
          "workspaces",
          "-n",
          ns,
          "-o",
          "jsonpath={range .items[*]}{.metadata.name}={.status.sandboxPod} {end}",
        ]);
        const where = Object.fromEntries(
          placed.stdout
            .trim()
            .split(/\s+/)
            .map((p) => p.split("=")),
        );
        return where["ws-a"] &&
          where["ws-b"] &&
          holder(got, "ws-a")?.name === where["ws-a"] &&
          holder(got, "ws-b")?.name === where["ws-b"]
          ? got
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    assert.deepEqual(
      items.map((s) => s.name),
      items.map((s) => s.name).sort(),
      "in name order",
    );
    const a = holder(items, "ws-a")!;
    assert.notEqual(a.name, holder(items, "ws-b")!.name, "owners do not share a sandbox");
    assert.deepEqual(a.placed, [{ name: "ws-a", ownerId: "alice" }]);
    assert.equal(a.workspaces, 1);
    assert.equal(a.ready, true);
    assert.equal(a.error, undefined);
    assert.ok((a.maxWorkspaces ?? 0) >= 1);

    // The load is what the sandbox itself reports.
    await pods.setLoad(ns, a.name, { cpu: 0.5, memory: 0.25 });
    await waitFor("the pinned load through the gateway", async () => {
      const s = (await list()).find((x) => x.name === a.name);
      return s?.cpu === 0.5 && s.memory === 0.25;
    });

    // A pod that merely carries the fleet's labels is listed, and never called.
    const owner = await kubectl(
      ["create", "-n", ns, "-f", "-", "-o", "jsonpath={.metadata.uid}"],
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "stray-owner" } }),
    );
    assert.equal(owner.code, 0, owner.stderr);
    const stray = await kubectl(["create", "-f", "-"], JSON.stringify(strayPod(ns, owner.stdout)));
    assert.equal(stray.code, 0, stray.stderr);
    const listed = await waitFor("the stray pod in the list", async () =>
      (await list()).find((s) => s.name === "stray"),
    );
    assert.match(listed.error ?? "", /^not called: /);
    assert.equal(listed.cpu, undefined);
    assert.equal(listed.placed, undefined);

    // Sandboxes the gateway cannot reach: listed with why (a refused call, no address).
    const dir = await mkdtemp(join(tmpdir(), "agentry-sandbox-map-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const refusing = createServer((socket) => socket.destroy()).listen(0, "127.0.0.1");
    await once(refusing, "listening");
    t.after(() => void refusing.close());
    const mapFile = join(dir, "map.json");
    const port = (refusing.address() as AddressInfo).port;
    await writeFile(mapFile, JSON.stringify({ [`${ns}/${a.name}`]: `127.0.0.1:${port}` }));
    const blind = await startGateway(t, {
      dataPlane: { addresses: new PodAddresses(mapFile), signer: () => ring.signer() },
    });
    const unreachable = (await blind.call("GET", path)).body.items as Sandbox[];
    assert.match(unreachable.find((s) => s.name === a.name)?.error ?? "", /^status unavailable: /);
    const others = unreachable.filter((s) => s.name !== a.name && s.name !== "stray");
    assert.ok(others.length >= 1);
    for (const s of others) assert.equal(s.error, "no address yet", s.name);

    // RBAC: `get sandboxfleets` is what it takes.
    await waitFor(
      "the viewer's Role in force",
      async () => (await gw.call("GET", path, { token: "viewer-token" })).status === 200,
      {
        timeoutMs: 30_000,
      },
    );
    const denied = await gw.call("GET", path, { token: "nobody-token" });
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body.verb, "get");
    assert.match(String(denied.body.detail), /fleet-nobody may not get sandboxfleets/);
    const missing = await gw.call("GET", `/v1/namespaces/${ns}/sandboxfleets/no-such-fleet/sandboxes`);
    assert.equal(missing.status, 404);
    assert.equal((await gw.call("POST", path, { body: {} })).status, 405);

    // Every answer is audited: who asked about which fleet, and how it went.
    const audit = await gw.pool.query<{
      actor: string;
      name: string;
      outcome: string;
      status: number;
      detail: string;
    }>(
      "SELECT actor, name, outcome, status, detail FROM audit_log WHERE namespace = $1 AND verb = 'sandboxes.list'",
      [ns],
    );
    const ok = audit.rows.filter((r) => r.outcome === "succeeded");
    assert.ok(
      ok.some((r) => r.actor === ADMIN.user && r.name === "fleet" && /^sandboxes=\d+$/.test(r.detail)),
    );
    assert.ok(ok.some((r) => r.actor === VIEWER.user));
    assert.ok(!audit.rows.some((r) => r.actor === NOBODY.user), "a refused caller reaches no sandbox");
    const failed = audit.rows.find((r) => r.name === "no-such-fleet");
    assert.deepEqual([failed?.outcome, failed?.status], ["failed", 404]);
  });
});
