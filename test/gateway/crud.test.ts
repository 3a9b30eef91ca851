// The REST resources against the real control plane, with the embedded PGlite store:
// CRUD of each kind, pagination and label selectors, ETag/If-Match, problem+json errors
// that keep the apiserver's status, read-only status, run-now and the OpenAPI document.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { KINDS, RUN_NOW_ANNOTATION } from "../../api/v1alpha1/index.ts";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { ADMIN, createFleet, startGateway } from "./harness.ts";

const EXAMPLES: Record<string, string> = {
  AgentRuntime: "agentruntime.yaml",
  Pipeline: "pipeline-once.yaml",
  SandboxFleet: "sandboxfleet.yaml",
  Workspace: "workspace.yaml",
};
const example = (kind: string) =>
  yaml.load(readFileSync(join(repoRoot, "examples", EXAMPLES[kind]!), "utf8")) as Record<string, unknown> & {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };

describe("gateway REST resources", () => {
  for (const def of KINDS) {
    it(`create, get, list, replace, patch and delete a ${def.kind}`, async (t) => {
      const ns = await testNamespace(t);
      const gw = await startGateway(t);
      const base = `/v1/namespaces/${ns}/${def.plural}`;
      const obj = example(def.kind);
      if (def.kind === "Workspace") await createFleet(ns, (obj.spec.fleetRef as { name: string }).name);
      obj.metadata = { name: "one", labels: { tier: "a" } };

      const created = await gw.call("POST", base, { body: obj });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.headers.get("location"), `${base}/one`);
      const meta = created.body.metadata as { resourceVersion: string; annotations: Record<string, string> };
      assert.equal(created.headers.get("etag"), `"${meta.resourceVersion}"`);
      assert.equal(meta.annotations["agentry.dev/created-by"], ADMIN.user);
      assert.equal((created.body.metadata as Record<string, unknown>).managedFields, undefined);
      const onCluster = await kubectl(["get", def.plural, "one", "-n", ns, "-o", "json"]);
      assert.equal(onCluster.code, 0, onCluster.stderr);

      const got = await gw.call("GET", `${base}/one`);
      assert.equal(got.status, 200);
      const notModified = await gw.call("GET", `${base}/one`, {
        headers: { "if-none-match": got.headers.get("etag")! },
      });
      assert.equal(notModified.status, 304);

      const dup = await gw.call("POST", base, { body: obj });
      assert.equal(dup.status, 409);
      assert.match(dup.headers.get("content-type") ?? "", /application\/problem\+json/);
      assert.equal(dup.body.reason, "AlreadyExists");

      for (const name of ["two", "three"]) {
        const r = await gw.call("POST", base, {
          body: { ...obj, metadata: { name, labels: { tier: "b" } } },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      const page1 = await gw.call("GET", `${base}?limit=2`);
      assert.equal(page1.status, 200);
      assert.equal(page1.body.kind, `${def.kind}List`);
      assert.equal((page1.body.items as unknown[]).length, 2);
      const token = (page1.body.metadata as { continue?: string }).continue;
      assert.ok(token, "a continue token for the second page");
      assert.equal((page1.body.metadata as { remainingItemCount?: number }).remainingItemCount, 1);
      const page2 = await gw.call("GET", `${base}?limit=2&continue=${encodeURIComponent(token)}`);
      assert.equal((page2.body.items as unknown[]).length, 1);
      assert.equal(
        (page2.body.metadata as { remainingItemCount?: number }).remainingItemCount,
        undefined,
        "the last page: nothing remains",
      );
      const selected = await gw.call("GET", `${base}?labelSelector=${encodeURIComponent("tier=b")}`);
      const names = (selected.body.items as { metadata: { name: string } }[])
        .map((i) => i.metadata.name)
        .sort();
      assert.deepEqual(names, ["three", "two"]);

      // Replace with a stale If-Match → 412; with the current one → 200.
      const current = got.body as typeof obj;
      current.metadata.labels = { tier: "c" };
      const stale = await gw.call("PUT", `${base}/one`, { body: current, headers: { "if-match": '"1"' } });
      assert.equal(stale.status, 412, JSON.stringify(stale.body));
      const replaced = await gw.call("PUT", `${base}/one`, {
        body: current,
        headers: { "if-match": got.headers.get("etag")! },
      });
      assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
      assert.equal((replaced.body.metadata as { labels: Record<string, string> }).labels.tier, "c");
      assert.equal(
        (replaced.body.metadata as { annotations: Record<string, string> }).annotations[
          "agentry.dev/created-by"
        ],
        ADMIN.user,
      );

      const patched = await gw.call("PATCH", `${base}/one`, {
        body: { metadata: { labels: { tier: "d", extra: "x" } }, status: { phase: "Hacked" } },
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.deepEqual((patched.body.metadata as { labels: Record<string, string> }).labels, {
        tier: "d",
        extra: "x",
      });
      assert.notEqual((patched.body.status as { phase?: string } | undefined)?.phase, "Hacked");

      const statusWrite = await gw.call("PUT", `${base}/one/status`, { body: { status: {} } });
      assert.equal(statusWrite.status, 405);
      // A method the paths do not take: 405 naming the ones they do (not the read cache's GET).
      for (const [path, allow] of [
        [base, "GET, POST"],
        [`${base}/one`, "GET, PUT, PATCH, DELETE"],
      ] as const) {
        const options = await gw.call("OPTIONS", path);
        assert.equal(options.status, 405, path);
        assert.equal(options.headers.get("allow"), allow, path);
      }

      const deleted = await gw.call("DELETE", `${base}/one`);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      const gone = await gw.call("GET", `${base}/one`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.status, 404);
      assert.match(String(gone.body.type), /not-found$/);
      const goneAgain = await gw.call("DELETE", `${base}/one`);
      assert.equal(goneAgain.status, 404);
    });
  }

  it("rejects invalid bodies with 422 naming the field, before writing", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const base = `/v1/namespaces/${ns}/pipelines`;
    const bad = example("Pipeline");
    bad.metadata = { name: "bad" };
    bad.spec = { ...bad.spec, schedule: "not a cron" };
    const r = await gw.call("POST", base, { body: bad });
    assert.equal(r.status, 422);
    assert.ok(
      (r.body.errors as { path: string }[]).some((e) => e.path === "spec.schedule"),
      JSON.stringify(r.body),
    );
    const wrongNs = await gw.call("POST", base, {
      body: { ...bad, metadata: { name: "x", namespace: "other" } },
    });
    assert.equal(wrongNs.status, 422);
    const notJson = await gw.call("POST", base, {
      body: "{",
      headers: { "content-type": "application/json" },
    });
    assert.equal(notJson.status, 400);
    const wrongType = await gw.call("POST", base, { body: "x", headers: { "content-type": "text/plain" } });
    assert.equal(wrongType.status, 415);
    const huge = await gw.call("POST", base, { body: { ...bad, pad: "x".repeat(2 << 20) } });
    assert.equal(huge.status, 413);
    const list = await gw.call("GET", base);
    assert.deepEqual(list.body.items, []);
    const unauth = await gw.call("GET", base, { token: null });
    assert.equal(unauth.status, 401);
    assert.match(unauth.headers.get("www-authenticate") ?? "", /Bearer/);
  });

  it("run-now sets the run-now annotation to the request id", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const p = example("Pipeline");
    const name = String(p.metadata.name);
    assert.equal((await gw.call("POST", `/v1/namespaces/${ns}/pipelines`, { body: p })).status, 201);
    const run = await gw.call("POST", `/v1/namespaces/${ns}/pipelines/${name}/runs`, {
      headers: { "x-request-id": "run-123" },
    });
    assert.equal(run.status, 202, JSON.stringify(run.body));
    assert.equal(run.body.requestId, "run-123");
    const out = await kubectl([
      "get",
      "pipeline",
      name,
      "-n",
      ns,
      "-o",
      `jsonpath={.metadata.annotations.agentry\\.dev/run-now}`,
    ]);
    assert.equal(out.stdout, "run-123");
    assert.ok(RUN_NOW_ANNOTATION);
    const missing = await gw.call("POST", `/v1/namespaces/${ns}/pipelines/nope/runs`);
    assert.equal(missing.status, 404);
  });

  it("serves the OpenAPI 3.1 document, health and metrics", async (t) => {
    const gw = await startGateway(t);
    const doc = await gw.call("GET", "/openapi.json", { token: null });
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, "3.1.0");
    const paths = Object.keys(doc.body.paths as object);
    for (const def of KINDS) assert.ok(paths.includes(`/v1/namespaces/{namespace}/${def.plural}/{name}`));
    const health = await gw.call("GET", "/healthz", { token: null });
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: "ok" });
    await gw.call("GET", "/v1/namespaces/default/pipelines");
    const metrics = await fetch(gw.metricsUrl).then((r) => r.text());
    // The API's port does not show them, to anyone.
    assert.equal((await gw.call("GET", "/metrics", { token: null })).status, 404);
    assert.equal((await gw.call("GET", "/metrics")).status, 404);
    assert.match(
      metrics,
      /agentry_gateway_requests_total\{method="GET",route="\/v1\/namespaces\/\{namespace\}\/pipelines",status="200"\} 1/,
    );
    assert.match(metrics, /agentry_gateway_request_duration_seconds_bucket/);
  });
});
