// The admission webhook against the real kube-apiserver, which calls it over TLS on
// loopback: every rule admits a good object and denies a bad one with its message through
// `kubectl apply`, defaults appear, and the documented failurePolicy holds when it is down.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { kubectl, testNamespace, waitFor, type RunResult } from "../harness/cluster.ts";
import { startWebhook, webhookId, webhookRulesInForce, type WebhookProcess } from "../harness/webhook.ts";

const API = "agentry.dev/v1alpha1";
const IMG = "ghcr.io/acme";

function apply(namespace: string, obj: object, extra: string[] = []): Promise<RunResult> {
  return kubectl(["apply", "-n", namespace, "-f", "-", ...extra], JSON.stringify(obj));
}

const fleet = (name: string, spec: object = {}, metadata: object = {}) => ({
  apiVersion: API,
  kind: "SandboxFleet",
  metadata: { name, ...metadata },
  spec: {
    template: { image: `${IMG}/sandbox:1`, resources: { limits: { cpu: "1", memory: "1Gi" } } },
    ...spec,
  },
});
const workspace = (name: string, fleetName: string) => ({
  apiVersion: API,
  kind: "Workspace",
  metadata: { name },
  spec: { fleetRef: { name: fleetName } },
});
const agent = (name: string, spec: object = {}) => ({
  apiVersion: API,
  kind: "AgentRuntime",
  metadata: { name },
  spec: { image: `${IMG}/agent:1`, resources: { limits: { cpu: "1", memory: "1Gi" } }, ...spec },
});
const pipeline = (name: string, spec: object = {}) => ({
  apiVersion: API,
  kind: "Pipeline",
  metadata: { name },
  spec: { activeDeadlineSeconds: 600, steps: [{ name: "one", image: `${IMG}/tools:1` }], ...spec },
});

function denied(res: RunResult, pattern: RegExp): void {
  assert.notEqual(res.code, 0, `expected a denial, got: ${res.stdout}`);
  assert.match(res.stderr, /admission webhook "validate(-delete)?\.agentry\.dev" denied the request/);
  assert.match(res.stderr, pattern);
}
function admitted(res: RunResult): void {
  assert.equal(res.code, 0, res.stderr);
}

/** Waits until the apiserver calls this webhook for the namespace (configurations load asynchronously). */
const webhookActive = (namespace: string) => webhookRulesInForce(namespace, "probe");

describe("admission webhook rules through kubectl apply", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  let ns: string;
  let hook: WebhookProcess;
  before(async () => {
    const ident = webhookId();
    ns = await testNamespace({ ...suite, name: "webhook-rules" }, ident.labels);
    hook = await startWebhook(suite, ident, {
      namespace: ns,
      args: ["--allowed-registries=ghcr.io,registry.example"],
    });
    await webhookActive(ns);
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("Workspace.fleetRef must exist; the fleet label is defaulted", async () => {
    denied(
      await apply(ns, workspace("w1", "fleet-a")),
      /spec\.fleetRef\.name: SandboxFleet "fleet-a" does not exist in namespace "[^"]+"; create the fleet first/,
    );
    admitted(await apply(ns, fleet("fleet-a")));
    admitted(await apply(ns, workspace("w1", "fleet-a")));
    const got = await kubectl([
      "get",
      "ws",
      "w1",
      "-n",
      ns,
      "-o",
      "jsonpath={.metadata.labels.agentry\\.dev/fleet}",
    ]);
    assert.equal(got.stdout, "fleet-a");
    const sbf = await kubectl([
      "get",
      "sbf",
      "fleet-a",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.maxWorkspacesPerSandbox}",
    ]);
    assert.equal(sbf.stdout, "32");
  });

  it("AgentRuntime.workspaceRef and Secret references must exist", async () => {
    admitted(await apply(ns, fleet("fleet-b")));
    denied(
      await apply(ns, agent("a1", { workspaceRef: { name: "ws-b" } })),
      /spec\.workspaceRef\.name: Workspace "ws-b" does not exist/,
    );
    admitted(await apply(ns, workspace("ws-b", "fleet-b")));
    admitted(await apply(ns, agent("a1", { workspaceRef: { name: "ws-b" } })));

    const withSecret = agent("a2", {
      model: { provider: "openai", model: "gpt-x", credentialsSecretRef: { name: "llm" } },
    });
    denied(
      await apply(ns, withSecret),
      /spec\.model\.credentialsSecretRef\.name: Secret "llm" does not exist/,
    );
    admitted(await kubectl(["create", "secret", "generic", "llm", "-n", ns, "--from-literal=token=x"]));
    denied(
      await apply(ns, withSecret),
      /spec\.model\.credentialsSecretRef\.key: Secret "llm" has no key "api-key" \(it has "token"\)/,
    );
    admitted(await kubectl(["create", "secret", "generic", "llm2", "-n", ns, "--from-literal=api-key=x"]));
    admitted(
      await apply(
        ns,
        agent("a2", {
          model: { provider: "openai", model: "gpt-x", credentialsSecretRef: { name: "llm2" } },
        }),
      ),
    );
  });

  it("image policy: allowed registries and no latest", async () => {
    denied(
      await apply(ns, agent("img", { image: "ghcr.io/acme/agent:latest" })),
      /spec\.image: image "ghcr\.io\/acme\/agent:latest" uses the tag latest/,
    );
    denied(
      await apply(ns, agent("img", { image: "ghcr.io/acme/agent" })),
      /has no tag or digest, which means latest/,
    );
    denied(
      await apply(ns, agent("img", { image: "docker.io/acme/agent:1" })),
      /comes from docker\.io, which this cluster does not allow; use an image from ghcr\.io, registry\.example/,
    );
    admitted(await apply(ns, agent("img", { image: "registry.example/acme/agent:1" })));
  });

  it("Pipeline: cron with time zone, step agents, and warnings", async () => {
    denied(
      await apply(ns, pipeline("p1", { schedule: "0 2 * * *", timeZone: "Mars/Olympus" })),
      /spec\.timeZone: "Mars\/Olympus" is not an IANA time zone/,
    );
    denied(
      await apply(ns, pipeline("p1", { schedule: "0 2 L * *" })),
      /spec\.schedule: "0 2 L \* \*" is not a valid cron expression/,
    );
    admitted(await apply(ns, pipeline("p1", { schedule: "0 2 * * *", timeZone: "Europe/Paris" })));
    const steps = [{ name: "ask", agentRef: { name: "helper" } }];
    denied(
      await apply(ns, pipeline("p2", { steps })),
      /spec\.steps\[0\]\.agentRef\.name: AgentRuntime "helper" does not exist/,
    );
    admitted(await apply(ns, agent("helper")));
    const ok = await apply(ns, { ...pipeline("p2", { steps }), spec: { steps } });
    admitted(ok);
    assert.match(ok.stderr, /Warning: spec\.activeDeadlineSeconds: not set; a stuck run is never stopped/);
  });

  it("a fleet cannot shrink below its workspaces, nor be deleted while it has some", async () => {
    const small = { minReplicas: 1, maxReplicas: 2, warmEmpty: 0, maxWorkspacesPerSandbox: 1 };
    admitted(await apply(ns, fleet("fleet-c", small)));
    admitted(await apply(ns, workspace("c1", "fleet-c")));
    admitted(await apply(ns, workspace("c2", "fleet-c")));
    denied(
      await apply(ns, fleet("fleet-c", { ...small, maxReplicas: 1 })),
      /spec\.maxReplicas: maxReplicas × maxWorkspacesPerSandbox = 1 × 1 = 1 cannot hold the 2 Workspaces/,
    );
    denied(
      await kubectl(["delete", "sbf", "fleet-c", "-n", ns, "--wait=false"]),
      /SandboxFleet "fleet-c" still hosts 2 Workspace\(s\) \(c1, c2\); delete them first, or annotate the fleet with agentry\.dev\/allow-delete-with-workspaces="true"/,
    );
    admitted(
      await kubectl([
        "annotate",
        "sbf",
        "fleet-c",
        "-n",
        ns,
        "agentry.dev/allow-delete-with-workspaces=true",
      ]),
    );
    const del = await kubectl(["delete", "sbf", "fleet-c", "-n", ns, "--wait=false"]);
    admitted(del);
    assert.match(del.stderr, /lose their sandboxes/);
  });

  it("serves /healthz, /readyz and /metrics over TLS", async () => {
    const res = await kubectl(["get", "--raw", "/healthz"]); // the apiserver is up
    admitted(res);
    const metrics = await waitFor("metrics", () =>
      fetchInsecure(`https://127.0.0.1:${hook.port}/metrics`).then((t) =>
        t.includes("agentry_admission_reviews_total") ? t : undefined,
      ),
    );
    assert.match(
      metrics,
      /agentry_admission_reviews_total\{endpoint="validate",kind="Workspace",operation="CREATE",result="denied"\} [1-9]/,
    );
    assert.deepEqual(JSON.parse(await fetchInsecure(`https://127.0.0.1:${hook.port}/readyz`)), {
      status: "ok",
    });
  });
});

/** GET over TLS without verifying the certificate (the test only reads health and metrics). */
async function fetchInsecure(url: string): Promise<string> {
  const https = await import("node:https");
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

/** SHA-256 fingerprint of the certificate the webhook serves now. */
async function servedFingerprint(port: number): Promise<string> {
  const tls = await import("node:tls");
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

async function secretCert(namespace: string): Promise<string> {
  const res = await kubectl([
    "get",
    "secret",
    "agentry-webhook-tls",
    "-n",
    namespace,
    "-o",
    "jsonpath={.data.tls\\.crt}",
  ]);
  return Buffer.from(res.stdout, "base64").toString();
}

describe("admission webhook certificates", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("rotates a short-lived self-managed certificate and keeps admitting", async () => {
    const { X509Certificate } = await import("node:crypto");
    const ident = webhookId();
    const ns = await testNamespace({ ...suite, name: "webhook-rotation" }, ident.labels);
    const hook = await startWebhook(suite, ident, {
      namespace: ns,
      args: ["--cert-validity=24s", "--cert-rotate-before=16s"],
    });
    await webhookActive(ns);
    let pem = await secretCert(ns);
    for (let round = 1; round <= 2; round++) {
      const previous = pem;
      pem = await waitFor(
        `rotation ${round}`,
        async () => {
          const now = await secretCert(ns);
          return now && now !== previous ? now : undefined;
        },
        { timeoutMs: 30_000 },
      );
      const want = new X509Certificate(pem).fingerprint256;
      await waitFor(
        `the new certificate served (round ${round})`,
        async () => (await servedFingerprint(hook.port)) === want,
        { timeoutMs: 30_000 },
      );
      const bundle = await kubectl([
        "get",
        "validatingwebhookconfiguration",
        hook.validating,
        "-o",
        "jsonpath={.webhooks[0].clientConfig.caBundle}",
      ]);
      assert.equal(
        Buffer.from(bundle.stdout, "base64")
          .toString()
          .match(/BEGIN CERTIFICATE/g)?.length,
        2,
        "new and previous CA trusted",
      );
      denied(
        await apply(ns, workspace("w", "missing"), ["--dry-run=server"]),
        /SandboxFleet "missing" does not exist/,
      );
      admitted(await apply(ns, fleet(`f${round}`)));
    }
    const rotated = hook.logs.filter((l) => l.message === "webhook certificate rotated");
    assert.ok(rotated.length >= 2, `rotations logged: ${rotated.length}`);
  });
});

describe("admission webhook down: failurePolicy", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const suite = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it("Fail (the default): writes are rejected with a clear error while the webhook is down", async () => {
    const ident = webhookId();
    const ns = await testNamespace({ ...suite, name: "webhook-fail" }, ident.labels);
    const hook = await startWebhook(suite, ident, { namespace: ns });
    await webhookActive(ns);
    await hook.stop();
    const res = await apply(ns, fleet("f"));
    assert.notEqual(res.code, 0, "the write must be rejected");
    assert.match(res.stderr, /failed calling webhook "(default|validate)\.agentry\.dev"/);
    assert.match(res.stderr, /connection refused/);
    const got = await kubectl(["get", "sbf", "f", "-n", ns, "--ignore-not-found", "-o", "name"]);
    assert.equal(got.stdout.trim(), "", "nothing was written");
  });

  it("Ignore: writes go through unchecked while the webhook is down", async () => {
    const ident = webhookId();
    const ns = await testNamespace({ ...suite, name: "webhook-ignore" }, ident.labels);
    const hook = await startWebhook(suite, ident, {
      namespace: ns,
      args: ["--failure-policy=Ignore", "--timeout=15s"],
    });
    await webhookActive(ns);
    await hook.stop();
    admitted(await apply(ns, workspace("w", "missing")));
  });
});
