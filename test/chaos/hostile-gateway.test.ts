// Issue 17, item 6, against real processes: the gateway (gateway/main.ts) limits requests per
// client address before authentication and TokenReviews of unknown bearer tokens per address
// (counted by the gateway's metric and by the apiserver's own), re-authorises open event
// streams and closes them with `event: revoked` once the caller's permission or token is
// gone, and caps the streams one caller may hold; the webhook answers a review that does not
// hold together with one generic message, and with a client CA answers only the apiserver.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { describe, it } from "node:test";
import forge from "node-forge";
import * as yaml from "js-yaml";
import { kubectl, run, testNamespace, waitFor } from "../harness/cluster.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { installCrds } from "../harness/install.ts";
import { startWebhook, webhookId } from "../harness/webhook.ts";
import { ADMIN } from "../gateway/harness.ts";
import { openSse, type SseClient } from "../gateway/sse.ts";
import { gatewayWithTokens, tempDir } from "./processes.ts";

const ADMIN_TOKEN = `hostile-admin-${randomBytes(8).toString("hex")}`;

async function apply(manifest: string): Promise<void> {
  const r = await kubectl(["apply", "-f", "-"], manifest);
  assert.equal(r.code, 0, r.stderr);
}

/** A ServiceAccount allowed to watch Workspaces of `ns`, and a token for it. */
async function watcher(ns: string, name: string): Promise<string> {
  await apply(`
apiVersion: v1
kind: ServiceAccount
metadata: { name: ${name}, namespace: ${ns} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: workspace-reader, namespace: ${ns} }
rules: [{ apiGroups: [agentry.dev], resources: [workspaces], verbs: [get, list, watch] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ${name}, namespace: ${ns} }
subjects: [{ kind: ServiceAccount, name: ${name}, namespace: ${ns} }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: workspace-reader }
`);
  const token = await kubectl(["create", "token", name, "-n", ns, "--duration=30m"]);
  assert.equal(token.code, 0, token.stderr);
  return token.stdout.trim();
}

/** Sum of a metric's samples in Prometheus text (optionally only samples whose labels contain `filter`). */
function metricSum(text: string, name: string, filter = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? "").includes(filter)) sum += Number(m[3]);
  }
  return sum;
}

const apiserverTokenReviews = async () => {
  const r = await kubectl(["get", "--raw", "/metrics"]);
  assert.equal(r.code, 0, r.stderr);
  return metricSum(r.stdout, "apiserver_request_total", 'resource="tokenreviews"');
};

describe("hostile caller: gateway limits and stream re-authorisation, webhook answers", () => {
  it("bad bearer tokens from one address get 429 before the TokenReviews pile up", async (t) => {
    const ns = await testNamespace(t);
    const gw = await gatewayWithTokens(
      t,
      { [ADMIN_TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } },
      {
        AGENTRY_TOKEN_REVIEW: "true",
        AGENTRY_TOKEN_REVIEW_RATE: "1",
        AGENTRY_TOKEN_REVIEW_BURST: "5",
        AGENTRY_ADDRESS_RATE_LIMIT: "1",
        AGENTRY_ADDRESS_RATE_BURST: "400",
      },
    );
    const metrics = async () => (await fetch(gw.metricsUrl)).text();
    const reviewsBefore = metricSum(await metrics(), "agentry_gateway_token_reviews_total");
    const apiserverBefore = await apiserverTokenReviews();
    const path = `/v1/namespaces/${ns}/workspaces`;

    // 300 requests, each with a token never seen before and a made-up X-Forwarded-For (not
    // trusted: the gateway has no --trust-proxy, so the connection's address counts).
    const started = Date.now();
    const statuses: number[] = [];
    const details = new Set<string>();
    const one = async () => {
      const r = await gw.call("GET", path, {
        token: `forged-${randomBytes(16).toString("hex")}`,
        headers: { "x-forwarded-for": `198.51.100.${Math.floor(Math.random() * 250)}` },
      });
      statuses.push(r.status);
      if (r.status === 429) {
        details.add(String(r.body.detail).replace(/from \S+;/, "from ADDRESS;"));
        assert.ok(Number(r.headers.get("retry-after")) >= 1, "Retry-After");
      }
    };
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 10 }, one));
    const seconds = (Date.now() - started) / 1000;

    const reviews = metricSum(await metrics(), "agentry_gateway_token_reviews_total") - reviewsBefore;
    const count = (s: number) => statuses.filter((x) => x === s).length;
    t.diagnostic(
      `300 forged tokens in ${seconds.toFixed(1)}s: ${count(401)} × 401, ${count(429)} × 429; ${reviews} TokenReviews`,
    );
    assert.equal(count(401) + count(429), 300, `only 401 and 429: ${statuses.join(",")}`);
    // The burst (5) plus one a second, and one in flight at the edge.
    assert.ok(reviews <= 5 + Math.ceil(seconds) + 1, `${reviews} TokenReviews in ${seconds}s`);
    assert.equal(
      count(401),
      reviews,
      "every refusal with a review behind it is a 401; the rest never reached it",
    );
    assert.deepEqual(
      [...details],
      ["too many unrecognised bearer tokens from ADDRESS; retry after the Retry-After seconds"],
    );
    // The apiserver agrees (other test files may send a few reviews of their own meanwhile).
    const apiserverReviews = (await apiserverTokenReviews()) - apiserverBefore;
    assert.ok(apiserverReviews < 60, `the apiserver saw ${apiserverReviews} TokenReviews`);
    assert.equal(
      metricSum(await metrics(), "agentry_gateway_address_limited_total", 'limit="token_reviews"'),
      count(429),
    );

    // A caller the gateway knows is not held up by the flood from its address...
    assert.equal((await gw.call("GET", path, { token: ADMIN_TOKEN })).status, 200);
    // ...until the address's own request budget (400, then 1 a second) is spent: then
    // everything from it is 429 before authentication, known token or not.
    let answer = 200;
    let sent = 0;
    while (answer !== 429 && sent < 200) {
      answer = (await gw.call("GET", path, { token: ADMIN_TOKEN })).status;
      sent++;
    }
    assert.equal(answer, 429, `still ${answer} after ${sent} more requests`);
    const before = metricSum(await metrics(), "agentry_gateway_token_reviews_total");
    const last = await gw.call("GET", path, { token: `forged-${randomBytes(16).toString("hex")}` });
    assert.equal(last.status, 429);
    assert.match(String(last.body.detail), /too many requests from /);
    assert.equal(metricSum(await metrics(), "agentry_gateway_token_reviews_total"), before, "no review");
  });

  it("closes an event stream once its caller's permission or token is gone, and caps streams per caller", async (t) => {
    const ns = await testNamespace(t);
    const gw = await gatewayWithTokens(
      t,
      { [ADMIN_TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } },
      { AGENTRY_TOKEN_REVIEW: "true", AGENTRY_SSE_REAUTHORIZE: "1", AGENTRY_SSE_MAX_STREAMS: "2" },
    );
    const watchUrl = `${gw.url}/v1/watch/namespaces/${ns}/workspaces`;
    const reader = await watcher(ns, "reader");
    const shortLived = await watcher(ns, "short-lived");
    const streams: SseClient[] = [];
    t.after(() => streams.forEach((s) => s.close()));
    const open = async (token: string) => {
      const s = await openSse(watchUrl, token);
      streams.push(s);
      return s;
    };
    const byRbac = await open(reader);
    const byToken = await open(shortLived);
    assert.equal(byRbac.status, 200);
    assert.equal(byToken.status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!byRbac.ended && !byToken.ended, "both streams stay open while allowed");

    const revoked = (s: SseClient, what: string) =>
      waitFor(
        what,
        () => {
          const e = s.events().find((f) => f.event === "revoked");
          return e && s.ended ? (JSON.parse(e.data ?? "{}") as { reason: string }).reason : undefined;
        },
        { timeoutMs: 30_000 },
      );
    // Permission taken away: the RoleBinding goes.
    const t0 = Date.now();
    assert.equal((await kubectl(["delete", "rolebinding", "reader", "-n", ns])).code, 0);
    assert.match(await revoked(byRbac, "the reader's stream revoked"), /may no longer watch workspaces/);
    t.diagnostic(`RBAC revocation closed the stream after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    // Token taken away: its ServiceAccount is deleted, so TokenReview refuses it.
    const t1 = Date.now();
    assert.equal((await kubectl(["delete", "serviceaccount", "short-lived", "-n", ns])).code, 0);
    assert.match(await revoked(byToken, "the short-lived stream revoked"), /bearer token is no longer valid/);
    t.diagnostic(`token revocation closed the stream after ${((Date.now() - t1) / 1000).toFixed(1)}s`);
    // And they cannot come back.
    assert.equal((await open(reader)).status, 403);
    assert.equal((await open(shortLived)).status, 401);

    // At most two streams per caller.
    const first = await open(ADMIN_TOKEN);
    const second = await open(ADMIN_TOKEN);
    const third = await open(ADMIN_TOKEN);
    assert.deepEqual([first.status, second.status, third.status], [200, 200, 429]);
    first.close();
    await waitFor("a slot free again", async () => {
      const s = await open(ADMIN_TOKEN);
      if (s.status !== 200) return undefined;
      s.close();
      return true;
    });
    const text = await (await fetch(gw.metricsUrl)).text();
    assert.equal(metricSum(text, "agentry_gateway_sse_closed_total", 'reason="revoked"'), 2);
  });

  it("the webhook answers a review that does not hold together with one generic message", async (t) => {
    const ident = webhookId();
    const home = await testNamespace(t, ident.labels);
    const secretNs = await testNamespace(t);
    await apply(`
apiVersion: agentry.dev/v1alpha1
kind: SandboxFleet
metadata: { name: hidden-fleet, namespace: ${secretNs} }
spec: { template: { image: registry.example/sandbox:1 } }
`);
    const hook = await startWebhook(t, ident, { namespace: home });
    const review = (namespace: string | undefined, objectNs: string, fleet: string) => ({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: randomBytes(8).toString("hex"),
        kind: { group: "agentry.dev", version: "v1alpha1", kind: "Workspace" },
        operation: "CREATE",
        ...(namespace ? { namespace } : {}),
        object: {
          apiVersion: "agentry.dev/v1alpha1",
          kind: "Workspace",
          metadata: { name: "probe", namespace: objectNs },
          spec: { fleetRef: { name: fleet } },
        },
      },
    });
    const answers = new Set<string>();
    for (const body of [
      review(home, secretNs, "hidden-fleet"),
      review(home, secretNs, "no-such-fleet"),
      review(undefined, secretNs, "hidden-fleet"),
    ]) {
      const r = await post(hook.port, "/validate", body);
      assert.equal(r.status, 200);
      const response = (
        r.body as { response: { allowed: boolean; status: { code: number; message: string } } }
      ).response;
      assert.equal(response.allowed, false);
      assert.equal(response.status.code, 400);
      assert.doesNotMatch(response.status.message, /hidden-fleet|no-such-fleet|exist/);
      answers.add(response.status.message);
    }
    assert.equal(answers.size, 1, "whether the fleet exists or not, the same words");
  });

  it("with a client CA the webhook answers the apiserver and nobody else", async (t) => {
    const dir = await tempDir(t, "agentry-webhook-client-");
    const trusted = clientCertificate("kube-apiserver-admission");
    const stranger = clientCertificate("kube-apiserver-admission");
    const file = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
    const kubeconfig = await file(
      "webhook-client.kubeconfig",
      yaml.dump({
        apiVersion: "v1",
        kind: "Config",
        users: [
          {
            name: "*",
            user: {
              "client-certificate": await file("client.crt", trusted.cert),
              "client-key": await file("client.key", trusted.key),
            },
          },
        ],
      }),
    );
    const webhookConfig = {
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "WebhookAdmissionConfiguration",
      kubeConfigFile: kubeconfig,
    };
    const admissionConfig = await file(
      "admission.yaml",
      yaml.dump({
        apiVersion: "apiserver.config.k8s.io/v1",
        kind: "AdmissionConfiguration",
        plugins: [
          { name: "ValidatingAdmissionWebhook", configuration: webhookConfig },
          { name: "MutatingAdmissionWebhook", configuration: webhookConfig },
        ],
      }),
    );
    // A control plane of its own: its apiserver presents that client certificate to webhooks.
    const cp = await ControlPlane.start({
      nodes: 0,
      apiserverArgs: [`--admission-control-config-file=${admissionConfig}`],
    });
    t.after(() => cp.stop());
    installCrds(cp.kubeconfig);
    const env = { KUBECONFIG: cp.kubeconfig };
    const ctl = (args: string[], input?: string) => run("kubectl", args, input, env);
    const ident = webhookId();
    const ns = `verified-${ident.id}`;
    const created = await ctl(["create", "namespace", ns]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(
      (await ctl(["label", "namespace", ns, ...Object.entries(ident.labels).map(([k, v]) => `${k}=${v}`)]))
        .code,
      0,
    );
    const hook = await startWebhook(t, ident, {
      namespace: ns,
      kubeconfig: cp.kubeconfig,
      args: [`--client-ca-file=${await file("client-ca.crt", trusted.ca)}`],
    });

    // The apiserver is answered: the webhook's own rule refuses a Workspace of a missing fleet.
    const probe = JSON.stringify({
      apiVersion: "agentry.dev/v1alpha1",
      kind: "Workspace",
      metadata: { name: "probe", namespace: ns },
      spec: { fleetRef: { name: "no-such-fleet" } },
    });
    let lastAnswer = "";
    const refused = await waitFor(
      "the webhook's rule in force through the verified apiserver",
      async () => {
        const r = await ctl(["apply", "-f", "-"], probe);
        lastAnswer = `kubectl exited ${r.code}: ${r.stdout}${r.stderr}`;
        return r.code !== 0 && /does not exist/.test(r.stderr) ? r.stderr : undefined;
      },
      // A second control plane beside a loaded test run: the webhook's certificate and CA
      // injection took over 30 s once (load average above 20).
      { timeoutMs: 120_000 },
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; the last answer: ${lastAnswer}; webhook log: ${hook.logs
          .slice(-10)
          .map((l) => JSON.stringify(l))
          .join(" | ")}`,
      );
    });
    assert.match(refused, /SandboxFleet "no-such-fleet" does not exist/);

    // Anyone else gets no review at all: no certificate, or one from another CA.
    const body = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: JSON.parse(
        JSON.stringify({
          uid: "x",
          kind: { group: "agentry.dev", version: "v1alpha1", kind: "Workspace" },
          operation: "CREATE",
          namespace: ns,
          object: JSON.parse(probe) as object,
        }),
      ) as object,
    };
    for (const [who, cert] of [
      ["no certificate", undefined],
      ["a certificate from another CA", stranger],
    ] as const) {
      const r = await post(hook.port, "/validate", body, cert);
      assert.equal(r.status, 403, who);
      assert.equal((r.body as { response?: unknown }).response, undefined, `${who}: no review`);
      assert.match(String((r.body as { error?: string }).error), /client certificate/, who);
    }
    const direct = await post(hook.port, "/validate", body, trusted);
    assert.equal(direct.status, 200, "a caller with the apiserver's certificate is answered");
    // Health needs no certificate (kubelet probes).
    assert.equal((await get(hook.port, "/healthz")).status, 200);
    const metrics = await get(hook.port, "/metrics");
    assert.equal(metricSum(metrics.text, "agentry_webhook_refused_callers_total"), 2);
  });
});

/** A CA and a client certificate it signed (RSA 2048, clientAuth), as PEM. */
function clientCertificate(cn: string): { ca: string; cert: string; key: string } {
  const now = Date.now();
  const make = (publicKey: forge.pki.PublicKey) => {
    const c = forge.pki.createCertificate();
    c.publicKey = publicKey;
    c.serialNumber = `0${randomBytes(8).toString("hex")}`;
    c.validity.notBefore = new Date(now - 60_000);
    c.validity.notAfter = new Date(now + 3_600_000);
    return c;
  };
  const caKeys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const ca = make(caKeys.publicKey);
  const caName = [{ name: "commonName", value: `test-client-ca-${randomBytes(4).toString("hex")}` }];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, critical: true },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const leaf = make(keys.publicKey);
  leaf.setSubject([{ name: "commonName", value: cn }]);
  leaf.setIssuer(caName);
  leaf.setExtensions([
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
  ]);
  leaf.sign(caKeys.privateKey, forge.md.sha256.create());
  return {
    ca: forge.pki.certificateToPem(ca),
    cert: forge.pki.certificateToPem(leaf),
    key: forge.pki.privateKeyToPem(keys.privateKey),
  };
}

interface HttpsAnswer {
  status: number;
  text: string;
  body: unknown;
}

/** An HTTPS call to the webhook on loopback as an outsider would make it (its CA not trusted). */
function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  client?: { cert: string; key: string },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        rejectUnauthorized: false,
        ...(client ? { cert: client.cert, key: client.key } : {}),
        headers: data
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) }
          : {},
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, body: parsed });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

const post = (port: number, path: string, body: unknown, client?: { cert: string; key: string }) =>
  call(port, "POST", path, body, client);
const get = (port: number, path: string) => call(port, "GET", path);
