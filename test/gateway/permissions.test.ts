// GET /v1/namespaces/{ns}/permissions on the real control plane: what each caller may do, as
// the apiserver's RBAC answers the caller's own SelfSubjectAccessReviews (impersonated), for a
// caller who may act, one who may only look, and one whose Role names a single object; bad
// queries are 400, and every answer leaves an audit record.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { grant } from "../harness/rbac.ts";
import { startGateway, type Gateway } from "./harness.ts";

const CALLERS = {
  "operator-token": { user: "perm-operator", groups: ["perm-operators"], via: "token" as const },
  "viewer-token": { user: "perm-viewer", groups: [], via: "token" as const },
  "one-fleet-token": { user: "perm-one-fleet", groups: [], via: "token" as const },
};

const KINDS = ["workspaces", "sandboxfleets", "pipelines", "agentruntimes"];
const grants = (ns: string) => [
  grant(ns, "operate", { group: "perm-operators" }, [
    { resources: KINDS, verbs: ["get", "list", "watch", "create", "patch"] },
    { resources: ["workspaces/files"], verbs: ["get", "update"] },
    { resources: ["workspaces/exec", "agentruntimes/tasks"], verbs: ["create", "get"] },
    { resources: ["pipelines/logs"], verbs: ["get"] },
  ]),
  grant(ns, "view", { user: "perm-viewer" }, [{ resources: KINDS, verbs: ["get", "list", "watch"] }]),
  grant(ns, "scale-one", { user: "perm-one-fleet" }, [
    { resources: ["sandboxfleets"], resourceNames: ["fleet-a"], verbs: ["get", "patch"] },
  ]),
];

interface Answer {
  allowed: boolean;
  verb: string;
  resource: string;
  subresource?: string;
  reason: string;
}
type Actions = Record<string, Answer>;

const ALL = [
  "createWorkspace",
  "exec",
  "readFiles",
  "readLogs",
  "readTasks",
  "runPipeline",
  "scaleFleet",
  "sendTask",
  "suspendWorkspace",
  "writeFiles",
];

async function permissions(gw: Gateway, ns: string, token: string, query = ""): Promise<Actions> {
  const r = await gw.call("GET", `/v1/namespaces/${ns}/permissions${query}`, { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.actions as Actions;
}

const allowedOf = (a: Actions) =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.allowed])) as Record<string, boolean>;

describe("the permissions route", () => {
  it("answers what each caller may do, as RBAC answers the caller", async (t) => {
    const ns = await testNamespace(t);
    for (const manifest of grants(ns)) {
      const applied = await kubectl(["apply", "-f", "-"], manifest);
      assert.equal(applied.code, 0, applied.stderr);
    }
    const gw = await startGateway(t, { tokens: CALLERS });
    // RBAC's own cache takes the new bindings in shortly after they are written.
    await waitFor(
      "the new Roles to be in force",
      async () =>
        (await permissions(gw, ns, "operator-token")).scaleFleet!.allowed &&
        (await permissions(gw, ns, "one-fleet-token", "?for=sandboxfleets/fleet-a")).scaleFleet!.allowed,
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    const operator = await permissions(gw, ns, "operator-token");
    assert.deepEqual(Object.keys(operator).sort(), ALL);
    assert.deepEqual(
      Object.values(allowedOf(operator)),
      ALL.map(() => true),
      JSON.stringify(operator),
    );
    // Allowed: the authorizer says which binding allows it.
    assert.match(operator.scaleFleet!.reason, /RoleBinding "operate/);

    const viewer = await permissions(gw, ns, "viewer-token");
    assert.deepEqual(
      Object.values(allowedOf(viewer)),
      ALL.map(() => false),
      JSON.stringify(viewer),
    );
    assert.deepEqual(
      [viewer.scaleFleet!.verb, viewer.scaleFleet!.resource, viewer.exec!.subresource],
      ["patch", "sandboxfleets", "exec"],
    );
    assert.match(
      viewer.scaleFleet!.reason,
      new RegExp(`perm-viewer may not patch sandboxfleets in namespace ${ns}.*pin and unpin`),
    );
    assert.match(viewer.exec!.reason, /may not create workspaces\/exec/);

    // A Role limited to one fleet: not namespace-wide, yes for that fleet, no for another.
    const one = await permissions(gw, ns, "one-fleet-token");
    assert.equal(one.scaleFleet!.allowed, false);
    const fleetA = await permissions(gw, ns, "one-fleet-token", "?for=sandboxfleets/fleet-a");
    assert.deepEqual(Object.keys(fleetA), ["scaleFleet"], "only the actions of the kind asked");
    assert.equal(fleetA.scaleFleet!.allowed, true);
    const fleetB = await permissions(gw, ns, "one-fleet-token", "?for=sandboxfleets/fleet-b");
    assert.equal(fleetB.scaleFleet!.allowed, false);
    assert.match(fleetB.scaleFleet!.reason, /patch sandboxfleets on fleet-b/);
    // A create names no object: asked about a name, it is still asked namespace-wide.
    const named = await permissions(gw, ns, "operator-token", "?for=workspaces/ws-1");
    assert.deepEqual(Object.keys(named).sort(), [
      "createWorkspace",
      "exec",
      "readFiles",
      "suspendWorkspace",
      "writeFiles",
    ]);
    assert.ok(Object.values(named).every((a) => a.allowed));

    // Bad queries name what is wrong; no token is 401; only GET.
    for (const [query, why] of [
      ["?for=secrets", /for must be a kind's plural/],
      ["?for=workspaces/Not_A_Name", /for must be/],
      ["?for=workspaces/a/b", /for must be/],
      [`?for=workspaces/${"a".repeat(254)}`, /for must be/],
      ["?for=workspaces&for=pipelines", /given once/],
    ] as const) {
      const r = await gw.call("GET", `/v1/namespaces/${ns}/permissions${query}`, { token: "viewer-token" });
      assert.equal(r.status, 400, query);
      assert.match(String(r.body.detail), why, query);
    }
    assert.equal((await gw.call("GET", `/v1/namespaces/${ns}/permissions`, { token: null })).status, 401);
    assert.equal((await gw.call("POST", `/v1/namespaces/${ns}/permissions`, { body: {} })).status, 405);

    // Each answer is audited with the caller.
    const audit = await gw.pool.query<{ actor: string; outcome: string; detail: string | null }>(
      "SELECT actor, outcome, detail FROM audit_log WHERE namespace = $1 AND verb = 'permissions'",
      [ns],
    );
    const actors = new Set(audit.rows.map((r) => r.actor));
    for (const who of ["perm-operator", "perm-viewer", "perm-one-fleet"])
      assert.ok(actors.has(who), `an audit record of ${who}'s question`);
    assert.ok(audit.rows.every((r) => r.outcome === "succeeded"));
    assert.ok(audit.rows.some((r) => r.detail === "resource=sandboxfleets"));
    // Only the kind: its actions, namespace-wide.
    const kind = await permissions(gw, ns, "viewer-token", "?for=pipelines");
    assert.deepEqual(Object.keys(kind).sort(), ["readLogs", "runPipeline"]);
  });
});
