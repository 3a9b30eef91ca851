// The webhook with certificates from cert-manager instead of its self-managed CA:
// - the chart's cert-manager objects (Issuer, Certificate) are valid against cert-manager's
//   own CRDs (from its Go module) and wire the webhook to the Secret cert-manager fills;
// - the webhook serves the files cert-manager writes (tls.crt, tls.key, ca.crt) over TLS,
//   trusted by the apiserver, and picks up a renewal without a restart.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { generateBundle } from "../../webhook/certs.ts";
import { kubectl, run, testNamespace, waitFor } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { startWebhook, webhookId, webhookRulesInForce } from "../harness/webhook.ts";

type Doc = {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  webhooks?: { clientConfig: { caBundle?: string } }[];
};

/** The served certificate's SHA-256 fingerprint. */
async function servedFingerprint(port: number): Promise<string> {
  const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
  await once(socket, "secureConnect");
  const fp = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fp;
}

describe("cert-manager mode", () => {
  it("renders an Issuer and a Certificate cert-manager accepts, wired to the webhook", async (t) => {
    const crds = await run("bash", [join(repoRoot, "hack", "certmanager-crds.sh")]);
    if (crds.code !== 0) {
      if (process.env.CI === "true") throw new Error(`cert-manager CRDs unavailable: ${crds.stderr}`);
      t.skip(`cert-manager CRDs unavailable: ${crds.stderr}`);
      return;
    }
    const dir = crds.stdout.trim();
    const installed = await kubectl(["apply", "--server-side", "-f", dir]);
    assert.equal(installed.code, 0, installed.stderr);
    t.after(async () => void (await kubectl(["delete", "-f", dir, "--ignore-not-found", "--wait=false"])));
    const established = await kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/certificates.cert-manager.io",
      "crd/issuers.cert-manager.io",
    ]);
    assert.equal(established.code, 0, established.stderr);

    const namespace = await testNamespace(t);
    const chart = join(repoRoot, "charts", "agentry");
    for (const extra of [
      [],
      [
        "--set",
        "webhook.certManager.issuerRef.name=corp-ca",
        "--set",
        "webhook.certManager.issuerRef.kind=ClusterIssuer",
      ],
    ]) {
      const rendered = await run("helm", [
        "template",
        "cm",
        chart,
        "--namespace",
        namespace,
        "--kube-version",
        "1.36.0",
        "--set",
        "webhook.certManager.enabled=true",
        ...extra,
      ]);
      assert.equal(rendered.code, 0, rendered.stderr);
      // Every object, cert-manager's included, passes the apiserver's validation.
      const dry = await kubectl(["apply", "--dry-run=server", "-n", namespace, "-f", "-"], rendered.stdout);
      assert.equal(dry.code, 0, dry.stderr);
      const docs = (yaml.loadAll(rendered.stdout) as (Doc | null)[]).filter((d): d is Doc => d !== null);
      const cert = docs.find((d) => d.kind === "Certificate");
      assert.ok(cert, "a Certificate");
      assert.equal(cert.spec?.secretName, "cm-agentry-webhook-tls");
      assert.ok((cert.spec?.dnsNames as string[]).includes(`cm-agentry-webhook.${namespace}.svc`));
      const issuer = docs.find((d) => d.kind === "Issuer");
      if (extra.length) {
        assert.equal(issuer, undefined, "the given issuer is used, none made");
        assert.deepEqual(cert.spec?.issuerRef, { name: "corp-ca", kind: "ClusterIssuer" });
      } else assert.ok(issuer, "a self-signed Issuer by default");
      for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
        const conf = docs.find((d) => d.kind === kind)!;
        assert.equal(
          conf.metadata.annotations?.["cert-manager.io/inject-ca-from"],
          `${namespace}/cm-agentry-webhook`,
        );
        assert.ok(
          conf.webhooks?.every((w) => !w.clientConfig.caBundle),
          "cainjector fills caBundle",
        );
      }
      const deployment = JSON.stringify(
        docs.find((d) => d.kind === "Deployment" && d.metadata.name === "cm-agentry-webhook"),
      );
      assert.match(deployment, /--cert-dir=/);
      assert.match(deployment, /--manage-configurations=false/);
      assert.match(deployment, /"secretName":"cm-agentry-webhook-tls"/);
    }
  });

  it("serves cert-manager's files, trusted by the apiserver, and picks up a renewal without a restart", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-certdir-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // What cert-manager writes into the Secret the webhook mounts.
    const write = async () => {
      const b = generateBundle({ hosts: ["127.0.0.1"], validityMs: 3_600_000 });
      await writeFile(join(dir, "tls.key"), b.key);
      await writeFile(join(dir, "tls.crt"), b.cert);
      await writeFile(join(dir, "ca.crt"), b.caCert);
      return new X509Certificate(b.cert).fingerprint256;
    };
    const first = await write();
    const ident = webhookId();
    const namespace = await testNamespace(t, ident.labels);
    const hook = await startWebhook(t, ident, { namespace, args: [`--cert-dir=${dir}`] });
    assert.equal(await servedFingerprint(hook.port), first);
    await webhookRulesInForce(namespace, "probe-1");

    // Renewal: a new key, certificate and CA in the same files.
    const second = await write();
    await waitFor(
      "the renewed certificate served",
      async () => (await servedFingerprint(hook.port)) === second,
      {
        timeoutMs: 30_000,
      },
    );
    await webhookRulesInForce(namespace, "probe-2");
    assert.equal(hook.logs.filter((l) => l.message === "webhook starting").length, 1, "no restart");
  });
});
