// The operator image (operator and webhook) and the gateway image, run as real containers
// the way the chart's Pods run them: args, env and securityContext from `helm template`
// (image.registry=localhost/agentry, image.tag=test), the chart's ServiceAccounts and RBAC
// applied to the test cluster, a token of that ServiceAccount mounted where the kubelet
// mounts it, and KUBERNETES_SERVICE_HOST/PORT naming the apiserver on loopback. Only the
// listen addresses differ (127.0.0.1 and a free port, since the containers share the host's
// loopback-only network), and the operator gets an empty pod address map (loopback only).
// The gateway image carries the web console: /ui is served from it and works in Chromium.
//
// The webhook manages its configurations as in the chart, with a namespaceSelector that
// matches no namespace, so the shared test cluster never calls it; it is asked directly.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import pg from "pg";
import { agentPod, api, kubectl, serviceUrl, testNamespace, waitFor } from "../harness/cluster.ts";
import { containersOr, imageId, podRunOptions, type RunOptions } from "../harness/containers.ts";
import { freePort } from "../harness/process.ts";
import { chart, helm } from "../chart/helm.ts";
import { freshDatabase } from "../gateway/harness.ts";
import { browserMissing, startBrowser } from "../console/browser.ts";
import {
  assertCleanStop,
  json,
  serviceAccountDir,
  start,
  tempDir,
  writesOutsideVolumes,
  type After,
} from "./lib.ts";

type Doc = k8s.KubernetesObject & { spec?: { template?: k8s.V1PodTemplateSpec } };
// What Helm would create before the Pods: identities, their RBAC, and the webhook
// configurations (the webhook only patches its caBundle into them).
const APPLIED_KINDS = [
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ClusterRole",
  "ClusterRoleBinding",
  "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration",
];
const group = (plural: string) => ({ group: "agentry.dev", version: "v1alpha1", plural });

/** The chart rendered for one release into one namespace, its RBAC applied, removed at the end. */
interface Release {
  name: string;
  namespace: string;
  fullname: string;
  docs: Doc[];
  /** The chart's Pod of a Deployment (or Job) by component: metadata.namespace set. */
  pod(component: string, kind?: "Deployment" | "Job"): k8s.V1Pod;
}

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
});

async function install(t: After & { name: string }, values: string[] = []): Promise<Release> {
  const namespace = await testNamespace(t);
  const name = `ct-${randomBytes(3).toString("hex")}`;
  const res = await helm([
    "template",
    name,
    chart,
    "--namespace",
    namespace,
    "--set",
    "crds.install=false",
    "--set",
    `watchNamespaces={${namespace}}`,
    "--set-json",
    `webhook.namespaceSelector={"matchLabels":{"agentry.dev/container-test":"${name}"}}`,
    "--set",
    "image.registry=localhost/agentry",
    "--set",
    "image.tag=test",
    ...values,
  ]);
  assert.equal(res.code, 0, res.stderr);
  const docs = (yaml.loadAll(res.stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null);
  const applied = docs.filter((d) => APPLIED_KINDS.includes(d.kind ?? ""));
  const res2 = await kubectl(["apply", "-f", "-"], applied.map((d) => yaml.dump(d)).join("---\n"));
  assert.equal(res2.code, 0, res2.stderr);
  const fullname = `${name}-agentry`;
  // Cluster-scoped objects outlive the namespace: removed when the suite ends.
  cleanups.push(async () => {
    for (const d of applied.filter((x) => !x.metadata?.namespace))
      await kubectl(["delete", d.kind!.toLowerCase(), d.metadata!.name!, "--ignore-not-found"]);
  });
  return {
    name,
    namespace,
    fullname,
    docs,
    pod(component, kind = "Deployment") {
      const d = docs.find(
        (x) =>
          x.kind === kind &&
          x.spec?.template?.metadata?.labels?.["app.kubernetes.io/name"] === `agentry-${component}`,
      );
      const spec = d?.spec?.template?.spec;
      assert.ok(spec, `the chart renders a ${kind} for ${component}`);
      return { metadata: { namespace, name: `${d.metadata!.name}-0` }, spec };
    },
  };
}

/** The chart's securityContext, as the container gets it. */
function assertRestricted(o: RunOptions): void {
  assert.equal(o.user, "65532:65532");
  assert.deepEqual([o.readOnly, o.noNewPrivileges, o.capDrop], [true, true, ["ALL"]]);
}

/** GET over HTTPS to 127.0.0.1, verifying the certificate against `ca` for `servername`. */
function httpsRequest(
  port: number,
  path: string,
  ca: string,
  servername: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        ca,
        servername,
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        timeout: 5000,
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("the operator image", () => {
  it("runs as the chart's operator Pod: ready, leads, reconciles with the chart's RBAC, releases its Lease on SIGTERM", async (t) => {
    if (!containersOr(t)) return;
    const rel = await install(t);
    const pod = rel.pod("operator");
    const sa = await serviceAccountDir(t, rel.namespace, pod.spec!.serviceAccountName!);
    const maps = await tempDir(t, "operator-map");
    await writeFile(join(maps, "pod-addresses.json"), "{}", { mode: 0o644 });
    const port = await freePort();
    const options = await podRunOptions(pod, {
      image: imageId("operator"),
      volumesDir: await tempDir(t, "operator-volumes"),
      serviceAccount: sa,
      flags: {
        "--health-addr": `127.0.0.1:${port}`,
        "--pod-address-map": "/etc/agentry/pods/pod-addresses.json",
      },
    });
    options.mounts = [
      ...(options.mounts ?? []),
      { source: maps, target: "/etc/agentry/pods", readOnly: true },
    ];
    assertRestricted(options);
    assert.ok(options.args?.includes(`--namespaces=${rel.namespace}`));

    const c = await start(t, options);
    const base = `http://127.0.0.1:${port}`;
    await c.waitHttpOk(`${base}/healthz`);
    await c.waitHttpOk(`${base}/readyz`);
    await c.waitFor("agentry_leader 1 on /metrics", async () =>
      /^agentry_leader 1$/m.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined,
    );

    // It reconciles: an AgentRuntime gets its Pod and Service and reports Ready.
    await api(k8s.CustomObjectsApi).createNamespacedCustomObject({
      ...group("agentruntimes"),
      namespace: rel.namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "agent" },
        spec: { image: "localhost/agentry/agent:test", model: { provider: "echo", model: "echo-1" } },
      },
    });
    const core = api(k8s.CoreV1Api);
    await c.waitFor("the AgentRuntime's Pod and Service", async () => {
      const p = await agentPod(rel.namespace, "agent");
      const s = await core.readNamespacedService({ namespace: rel.namespace, name: "agent" });
      return p && s ? true : undefined;
    });
    await c.waitFor("the AgentRuntime Ready", async () => {
      const ar = (await api(k8s.CustomObjectsApi).getNamespacedCustomObject({
        ...group("agentruntimes"),
        namespace: rel.namespace,
        name: "agent",
      })) as { status?: { phase?: string } };
      return ar.status?.phase === "Ready" ? true : undefined;
    });
    // With the chart's RBAC it keeps its signing key (by name, in its namespace), the trust
    // bundle where agents run, and the tokens Secret a Pipeline naming the agent needs.
    const ring = await core.readNamespacedSecret({
      namespace: rel.namespace,
      name: `${rel.fullname}-operator-signing-key`,
    });
    assert.equal(ring.metadata?.labels?.["agentry.dev/signing-key"], "agentry-operator");
    await c.waitFor("the trust bundle", () =>
      core
        .readNamespacedConfigMap({ namespace: rel.namespace, name: "agentry-trust" })
        .catch(() => undefined),
    );
    await api(k8s.CustomObjectsApi).createNamespacedCustomObject({
      ...group("pipelines"),
      namespace: rel.namespace,
      body: {
        apiVersion: "agentry.dev/v1alpha1",
        kind: "Pipeline",
        metadata: { name: "nightly" },
        spec: { schedule: "@daily", steps: [{ name: "ask", agentRef: { name: "agent" }, input: "hi" }] },
      },
    });
    await c.waitFor("the tokens Secret with the agent's token", async () => {
      const s = await core
        .readNamespacedSecret({ namespace: rel.namespace, name: "agentry-tokens" })
        .catch(() => undefined);
      return s?.data?.["agent.agent"] ? true : undefined;
    });
    const reconciles =
      /^controller_runtime_reconcile_total\{[^}]*controller="agentruntime"[^}]*\} (\d+)/m.exec(
        await (await fetch(`${base}/metrics`)).text(),
      );
    assert.ok(Number(reconciles?.[1]) >= 1, "controller_runtime_reconcile_total counts the reconciles");

    await assertCleanStop(c, pod.spec!.terminationGracePeriodSeconds ?? 30);
    const lease = await api(k8s.CoordinationV1Api).readNamespacedLease({
      namespace: rel.namespace,
      name: `${rel.fullname}-operator`,
    });
    assert.equal(lease.spec?.holderIdentity ?? "", "", "the Lease is released on SIGTERM");

    const changed = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitHttpOk(`${base}/readyz`);
      await w.waitFor("leadership", async () =>
        /^agentry_leader 1$/m.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined,
      );
    });
    assert.deepEqual(changed, [], "the operator writes nowhere");
  });
});

describe("the webhook (operator image)", () => {
  it("runs as the chart's webhook Pod: makes its certificate and configurations, answers reviews over verified TLS, stops cleanly", async (t) => {
    if (!containersOr(t)) return;
    const rel = await install(t);
    const pod = rel.pod("webhook");
    const sa = await serviceAccountDir(t, rel.namespace, pod.spec!.serviceAccountName!);
    const port = await freePort();
    const options = await podRunOptions(pod, {
      image: imageId("operator"),
      volumesDir: await tempDir(t, "webhook-volumes"),
      serviceAccount: sa,
      flags: { "--listen": `127.0.0.1:${port}` },
    });
    assertRestricted(options);
    assert.deepEqual(options.entrypoint, ["node", "dist/webhook/main.js"]);

    const c = await start(t, options);
    const secret = await c.waitFor("the serving certificate Secret", () =>
      api(k8s.CoreV1Api).readNamespacedSecret({
        namespace: rel.namespace,
        name: `${rel.fullname}-webhook-tls`,
      }),
    );
    const ca = Buffer.from(secret.data?.["ca.crt"] ?? "", "base64").toString();
    assert.match(ca, /BEGIN CERTIFICATE/);
    const host = `${rel.fullname}-webhook.${rel.namespace}.svc`;
    const get = (path: string) => httpsRequest(port, path, ca, host);
    await c.waitFor("/readyz over TLS", async () =>
      (await get("/readyz")).status === 200 ? true : undefined,
    );
    assert.equal((await get("/healthz")).status, 200);

    // The configurations it manages carry its CA.
    const vwc = await c.waitFor("the ValidatingWebhookConfiguration with the CA", async () => {
      const v = await api(k8s.AdmissionregistrationV1Api).readValidatingWebhookConfiguration({
        name: `${rel.fullname}-validating`,
      });
      return v.webhooks?.[0]?.clientConfig.caBundle ? v : undefined;
    });
    assert.equal(
      Buffer.from(vwc.webhooks![0]!.clientConfig.caBundle!, "base64").toString().trim(),
      ca.trim(),
    );

    // A review, as the apiserver would send it: a Workspace naming a fleet that does not exist.
    const review = await httpsRequest(port, "/validate", ca, host, {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: "review-1",
        kind: { group: "agentry.dev", version: "v1alpha1", kind: "Workspace" },
        resource: { group: "agentry.dev", version: "v1alpha1", resource: "workspaces" },
        operation: "CREATE",
        namespace: rel.namespace,
        name: "ws",
        userInfo: { username: "tester" },
        object: {
          apiVersion: "agentry.dev/v1alpha1",
          kind: "Workspace",
          metadata: { name: "ws", namespace: rel.namespace },
          spec: { fleetRef: { name: "missing" } },
        },
      },
    });
    assert.equal(review.status, 200, review.text);
    const answer = (
      JSON.parse(review.text) as {
        response: { uid: string; allowed: boolean; status?: { message?: string } };
      }
    ).response;
    assert.deepEqual([answer.uid, answer.allowed], ["review-1", false]);
    assert.match(answer.status?.message ?? "", /SandboxFleet "missing" does not exist/);
    assert.match((await get("/metrics")).text, /agentry_admission_reviews_total\{[^}]*\} 1/);

    await assertCleanStop(c, pod.spec!.terminationGracePeriodSeconds ?? 30);
    const changed = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitFor("/readyz over TLS", async () =>
        (await get("/readyz")).status === 200 ? true : undefined,
      );
    });
    assert.deepEqual(changed, [], "the webhook writes nowhere");
  });
});

/**
 * The chart's gateway Pod as a container of the test image: its ServiceAccount's token mounted,
 * the API and /metrics on free loopback ports.
 */
async function gatewayPod(
  t: After,
  rel: Release,
  o: { volumesDir?: string; resolvedEnv?: Record<string, string> } = {},
): Promise<{ pod: k8s.V1Pod; options: RunOptions; base: string; metricsUrl: string }> {
  const pod = rel.pod("gateway");
  const sa = await serviceAccountDir(t, rel.namespace, pod.spec!.serviceAccountName!);
  const port = await freePort();
  const metricsPort = await freePort();
  const options = await podRunOptions(pod, {
    image: imageId("gateway"),
    volumesDir: o.volumesDir ?? (await tempDir(t, "gateway-volumes")),
    serviceAccount: sa,
    ...(o.resolvedEnv ? { resolvedEnv: o.resolvedEnv } : {}),
    flags: { "--listen": `127.0.0.1:${port}`, "--metrics-addr": `127.0.0.1:${metricsPort}` },
  });
  assertRestricted(options);
  return {
    pod,
    options,
    base: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
  };
}

describe("the gateway image", () => {
  it("runs the chart's migration Job and gateway Pod against PostgreSQL: authenticates by TokenReview, writes as the caller, audits, stops cleanly", async (t) => {
    if (!containersOr(t)) return;
    const server = serviceUrl(t, "postgres");
    if (!server) return;
    const database = await freshDatabase(t, server);
    const rel = await install(t, ["--set", "gateway.database.urlSecret=gateway-db"]);
    const resolvedEnv = { DATABASE_URL: database };
    const volumesDir = await tempDir(t, "gateway-volumes");

    // The migration Job (a pre-install hook in the chart) first, then the gateway.
    const job = rel.pod("gateway-migrate", "Job");
    const migrate = await start(
      t,
      await podRunOptions(job, {
        image: imageId("gateway"),
        volumesDir: join(volumesDir, "job"),
        resolvedEnv,
      }),
    );
    await waitFor("the migration Job's container to finish", async () => !(await migrate.state()).running, {
      timeoutMs: 60_000,
    });
    assert.equal((await migrate.state()).exitCode, 0, await migrate.logs());

    const { pod, options, base, metricsUrl } = await gatewayPod(t, rel, { volumesDir, resolvedEnv });
    const c = await start(t, options);
    await c.waitHttpOk(`${base}/healthz`);
    await c.waitHttpOk(`${base}/readyz`);
    // /metrics on the chart's metrics port only; the API's port answers 404.
    assert.match(await (await fetch(metricsUrl)).text(), /^# HELP /m);
    assert.equal((await fetch(`${base}/metrics`)).status, 404);
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi?: string };
    assert.match(openapi.openapi ?? "", /^3\.1/);

    // Callers are Kubernetes ServiceAccounts, checked by TokenReview and impersonated.
    const core = api(k8s.CoreV1Api);
    for (const name of ["writer", "nobody"])
      await core.createNamespacedServiceAccount({ namespace: rel.namespace, body: { metadata: { name } } });
    const rbac = api(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: rel.namespace,
      body: {
        metadata: { name: "writer" },
        rules: [
          { apiGroups: ["agentry.dev"], resources: ["agentruntimes"], verbs: ["get", "list", "create"] },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: rel.namespace,
      body: {
        metadata: { name: "writer" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "writer" },
        subjects: [{ kind: "ServiceAccount", name: "writer", namespace: rel.namespace }],
      },
    });
    const writer = (await serviceAccountDir(t, rel.namespace, "writer")).token;
    const nobody = (await serviceAccountDir(t, rel.namespace, "nobody")).token;
    const list = (token?: string) =>
      fetch(`${base}/v1/namespaces/${rel.namespace}/agentruntimes`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    const anonymous = await list();
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("content-type") ?? "", /^application\/problem\+json/);
    assert.equal((await list(nobody)).status, 403);
    await c.waitFor("the writer's RBAC", async () =>
      (await list(writer)).status === 200 ? true : undefined,
    );
    const created = await fetch(`${base}/v1/namespaces/${rel.namespace}/agentruntimes`, {
      method: "POST",
      headers: { authorization: `Bearer ${writer}`, "content-type": "application/json" },
      body: JSON.stringify({
        apiVersion: "agentry.dev/v1alpha1",
        kind: "AgentRuntime",
        metadata: { name: "via-gateway" },
        spec: { image: "registry.example/agent:1", model: { provider: "echo", model: "echo-1" } },
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const ar = (await api(k8s.CustomObjectsApi).getNamespacedCustomObject({
      ...group("agentruntimes"),
      namespace: rel.namespace,
      name: "via-gateway",
    })) as { metadata: { annotations?: Record<string, string> } };
    assert.equal(
      ar.metadata.annotations?.["agentry.dev/created-by"],
      `system:serviceaccount:${rel.namespace}:writer`,
    );
    const db = new pg.Client({ connectionString: database });
    await db.connect();
    // The outcome is written off the response path: wait for it.
    const audit = await waitFor("the audit record's outcome", async () => {
      const r = await db.query<{ actor: string; outcome: string }>(
        "SELECT actor, outcome FROM audit_log WHERE name = 'via-gateway'",
      );
      return r.rows.some((row) => row.outcome === "pending") ? undefined : r;
    }).finally(() => db.end());
    assert.deepEqual(audit.rows, [
      { actor: `system:serviceaccount:${rel.namespace}:writer`, outcome: "succeeded" },
    ]);

    await assertCleanStop(c, pod.spec!.terminationGracePeriodSeconds ?? 30);
    const changed = await writesOutsideVolumes(t, options, async (w) => {
      await w.waitHttpOk(`${base}/readyz`);
      assert.equal((await list(writer)).status, 200);
    });
    assert.deepEqual(changed, [], "the gateway writes nowhere but /tmp");
  });

  it("serves the web console under /ui from the image, working in a real browser", async (t) => {
    if (!containersOr(t)) return;
    const rel = await install(t);
    const { pod, options, base } = await gatewayPod(t, rel);
    const c = await start(t, options);
    await c.waitHttpOk(`${base}/readyz`, 90_000);

    // The page, its bundle and stylesheet, built into the image: no flag needed, nothing fetched elsewhere.
    const index = await fetch(`${base}/ui/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(index.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    assert.equal(assets.length, 2, `the page names its script and stylesheet: ${html}`);
    for (const asset of assets) {
      const r = await fetch(base + asset);
      assert.equal(r.status, 200, asset);
      assert.match(r.headers.get("content-type") ?? "", asset.endsWith(".js") ? /javascript/ : /text\/css/);
      assert.match(r.headers.get("cache-control") ?? "", /immutable/);
      assert.ok((await r.arrayBuffer()).byteLength > 1000, `${asset} has content`);
    }
    // A page of the app is the app (a reload or a shared link); a missing file is a 404.
    const deep = await fetch(`${base}/ui/n/${rel.namespace}/fleets`);
    assert.equal(deep.status, 200);
    assert.equal(await deep.text(), html);
    assert.equal((await fetch(`${base}/ui/no-such-file.js`)).status, 404);

    // Chromium signs in to it with a ServiceAccount token (TokenReview, as the chart sets it up).
    const missing = browserMissing();
    if (missing) {
      if (process.env.CI === "true") assert.fail(missing);
      return t.diagnostic(`no browser check: ${missing}`);
    }
    await api(k8s.CoreV1Api).createNamespacedServiceAccount({
      namespace: rel.namespace,
      body: { metadata: { name: "console-user" } },
    });
    const user = await serviceAccountDir(t, rel.namespace, "console-user");
    const browser = await startBrowser(t);
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(`${base}/ui/`);
    await page.getByLabel("Bearer token").fill(user.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page
      .getByTestId("user")
      .filter({ hasText: `system:serviceaccount:${rel.namespace}:console-user` })
      .waitFor();
    assert.deepEqual(browser.offLoopback, [], "requests off loopback");
    assert.deepEqual(browser.pageErrors, [], "page errors and Content-Security-Policy violations");
    await assertCleanStop(c, pod.spec!.terminationGracePeriodSeconds ?? 30);
  });

  it("runs as the chart's default gateway Pod with the embedded database", async (t) => {
    if (!containersOr(t)) return;
    const rel = await install(t);
    const { pod, options, base, metricsUrl } = await gatewayPod(t, rel);
    assert.equal(options.env?.DATABASE_URL, undefined);
    const c = await start(t, options);
    await c.waitHttpOk(`${base}/readyz`, 90_000);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const metrics = await fetch(metricsUrl);
    assert.equal(metrics.status, 200);
    const anonymous = await json(await fetch(`${base}/v1/namespaces/${rel.namespace}/agentruntimes`));
    assert.equal(anonymous.status, 401);
    // Its own signing key and published public keys, with the chart's RBAC.
    const core = api(k8s.CoreV1Api);
    const ring = await core.readNamespacedSecret({
      namespace: rel.namespace,
      name: `${rel.fullname}-gateway-signing-key`,
    });
    assert.equal(ring.metadata?.labels?.["agentry.dev/signing-key"], "agentry-gateway");
    const published = await core.readNamespacedConfigMap({
      namespace: rel.namespace,
      name: `${rel.fullname}-gateway-public-keys`,
    });
    assert.equal(Object.keys(published.data ?? {}).length, 2, "its current and next public key");
    await assertCleanStop(c, pod.spec!.terminationGracePeriodSeconds ?? 30);
    const changed = await writesOutsideVolumes(t, options, (w) =>
      w.waitHttpOk(`${base}/readyz`, 90_000).then(() => undefined),
    );
    assert.deepEqual(changed, [], "the gateway writes nowhere but /tmp");
  });
});
