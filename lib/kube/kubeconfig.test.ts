import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "./kubeconfig.ts";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "agentry-kubeconfig-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A kubeconfig document with one cluster, user and context each, overridable. */
const doc = (over: { cluster?: object; user?: object; context?: object; current?: string } = {}) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443/", ...over.cluster } }],
    users: [{ name: "u", user: { ...over.user } }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u", ...over.context } }],
    "current-context": over.current ?? "x",
  });

describe("KubeConfig", () => {
  it("reads the current context's server, CA and token; inline data is base64", async () => {
    const kc = KubeConfig.fromYaml(
      doc({
        cluster: { "certificate-authority-data": Buffer.from("CA").toString("base64") },
        user: { token: "t0k" },
        context: { namespace: "team" },
      }),
    );
    assert.equal(kc.server, "https://127.0.0.1:6443");
    assert.equal(kc.tls.ca?.toString(), "CA");
    assert.equal(kc.tls.rejectUnauthorized, true);
    assert.equal(kc.namespace, "team");
    assert.equal(await kc.authorization(), "Bearer t0k");
  });

  it("reads certificate files relative to the kubeconfig's folder, as YAML too", async () => {
    await writeFile(join(dir, "ca.crt"), "CA-FILE");
    await writeFile(join(dir, "client.crt"), "CERT");
    await writeFile(join(dir, "client.key"), "KEY");
    const file = join(dir, "config");
    await writeFile(
      file,
      [
        "apiVersion: v1",
        "clusters:",
        "- name: c",
        "  cluster: {server: 'https://k:6443', certificate-authority: ca.crt, insecure-skip-tls-verify: true, tls-server-name: api}",
        "users:",
        "- name: u",
        "  user: {client-certificate: client.crt, client-key: client.key}",
        "contexts:",
        "- {name: x, context: {cluster: c, user: u}}",
        "current-context: x",
      ].join("\n"),
    );
    const kc = KubeConfig.fromFiles([file]);
    assert.equal(kc.tls.ca?.toString(), "CA-FILE");
    assert.equal(kc.tls.cert?.toString(), "CERT");
    assert.equal(kc.tls.key?.toString(), "KEY");
    assert.equal(kc.tls.rejectUnauthorized, false);
    assert.equal(kc.tls.servername, "api");
    assert.equal(await kc.authorization(), undefined);
  });

  it("merges $KUBECONFIG files: the first to name a context or the current one wins", async () => {
    const first = join(dir, "first");
    const second = join(dir, "second");
    await writeFile(first, JSON.stringify({ "current-context": "y" }));
    await writeFile(
      second,
      JSON.stringify({
        clusters: [{ name: "c2", cluster: { server: "https://second:1" } }],
        users: [{ name: "u2", user: { username: "ann", password: "pw" } }],
        contexts: [{ name: "y", context: { cluster: "c2", user: "u2" } }],
        "current-context": "other",
      }),
    );
    const kc = KubeConfig.fromDefault({ KUBECONFIG: `${first}:${join(dir, "missing")}:${second}` });
    assert.equal(kc.server, "https://second:1");
    assert.equal(await kc.authorization(), `Basic ${Buffer.from("ann:pw").toString("base64")}`);
  });

  it("re-reads a token file once its token may have rotated", async () => {
    const tokenFile = join(dir, "token");
    await writeFile(tokenFile, "one\n");
    const kc = KubeConfig.fromYaml(doc({ user: { tokenFile } }));
    assert.equal(await kc.authorization(0), "Bearer one");
    await writeFile(tokenFile, "two\n");
    assert.equal(await kc.authorization(1000), "Bearer one", "read again only after a minute");
    assert.equal(await kc.authorization(61_000), "Bearer two");
  });

  it("runs an exec credential plugin and keeps its token until it expires", async () => {
    const plugin = join(dir, "plugin.sh");
    const count = join(dir, "count");
    await writeFile(
      plugin,
      `#!/bin/sh\necho x >> "${count}"\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-'"$SUFFIX"'","expirationTimestamp":"2999-01-01T00:00:00Z"}}'\n`,
    );
    await chmod(plugin, 0o755);
    const kc = KubeConfig.fromYaml(
      doc({ user: { exec: { command: plugin, env: [{ name: "SUFFIX", value: "tok" }] } } }),
    );
    assert.equal(await kc.authorization(), "Bearer exec-tok");
    assert.equal(await kc.authorization(), "Bearer exec-tok");
    assert.equal((await readFile(count, "utf8")).trim().split("\n").length, 1, "the plugin ran once");
  });

  it("uses the Pod's ServiceAccount in a cluster", async () => {
    const sa = join(dir, "sa");
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, "ca.crt"), "CLUSTER-CA");
    await writeFile(join(sa, "token"), "sa-token");
    await writeFile(join(sa, "namespace"), "agentry-system\n");
    const kc = KubeConfig.inCluster(
      { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
      sa,
    );
    assert.equal(kc.server, "https://10.0.0.1:443");
    assert.equal(kc.tls.ca?.toString(), "CLUSTER-CA");
    assert.equal(kc.namespace, "agentry-system");
    assert.equal(await kc.authorization(), "Bearer sa-token");
  });

  for (const [what, text, message] of [
    ["no current context", doc({ current: "" }), /no current-context/],
    ["an unknown context", doc({ current: "nope" }), /no context nope/],
    ["an auth provider", doc({ user: { "auth-provider": { name: "gcp" } } }), /auth-provider gcp/],
    ["no server", doc({ cluster: { server: "" } }), /has no server/],
  ] as const) {
    it(`says what is wrong with a kubeconfig with ${what}`, () => {
      assert.throws(() => KubeConfig.fromYaml(text), message);
    });
  }

  it("says where to look when there is no configuration at all", () => {
    assert.throws(() => KubeConfig.fromDefault({ HOME: dir }), /set KUBECONFIG/);
  });
});
