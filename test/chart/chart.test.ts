// The Helm chart and the rendered manifests against the real control plane: lint, schema,
// server-side dry runs, real installs with each profile (kwok runs the pods, in namespaces
// that enforce Pod Security "restricted"), upgrade, uninstall, and the operator's RBAC.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { api, kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { egressAllowed, type Destination, type Policy } from "../harness/netpol.ts";
import { repoRoot } from "../harness/paths.ts";
import { chart, helm, release, render, RESTRICTED, type Doc } from "./helm.ts";

type Hooked = { metadata: { name: string; annotations?: Record<string, string> } };

describe("Helm chart", () => {
  it("passes helm lint --strict with every profile", async () => {
    for (const profile of ["", "values-dev.yaml", "values-staging.yaml", "values-prod.yaml"]) {
      const res = await helm(["lint", "--strict", chart, ...(profile ? ["-f", join(chart, profile)] : [])]);
      assert.equal(res.code, 0, `${profile || "defaults"}: ${res.stdout}${res.stderr}`);
    }
  });

  it("rejects a values file with a typo, naming the key", async () => {
    const res = await helm(["template", "x", chart, "--set", "operator.replicass=2"]);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /replicass/);
    const bad = await helm(["template", "x", chart, "--set", "operator.logLevel=loud"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /logLevel/);
  });

  it("carries the CRDs of crds/ as templates, kept by helm uninstall, unless crds.install=false", async () => {
    const crds = (await render()).filter((d) => d.kind === "CustomResourceDefinition");
    const files = (await readdir(join(repoRoot, "crds"))).filter((f) => f.endsWith(".yaml"));
    assert.equal(crds.length, files.length);
    for (const file of files) {
      const plain = yaml.load(await readFile(join(repoRoot, "crds", file), "utf8")) as Doc;
      const templated = crds.find((d) => d.metadata.name === plain.metadata.name);
      assert.ok(templated, `${plain.metadata.name} in the chart`);
      assert.deepEqual(templated.spec, plain.spec, `${plain.metadata.name}: the chart's CRD is crds/'s`);
      assert.equal(templated.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    }
    const without = await render(["--set", "crds.install=false"]);
    assert.deepEqual(
      without.filter((d) => d.kind === "CustomResourceDefinition"),
      [],
    );
  });

  it("lets the migration Job reach DNS and PostgreSQL through the default deny, from before it starts", async () => {
    for (const port of [5432, 6543]) {
      const docs = await render([
        "--set",
        "gateway.database.urlSecret=pg",
        ...(port === 5432 ? [] : ["--set", `gateway.database.port=${port}`]),
      ]);
      const policies = docs.filter((d) => d.kind === "NetworkPolicy") as unknown as Policy[];
      const job = docs.find((d) => d.kind === "Job") as unknown as Hooked & {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      const pod = { namespace: "agentry-system", labels: job.spec.template.metadata.labels };
      const dnsServer: Destination = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };
      const cases: [string, number, "TCP" | "UDP", Destination, boolean][] = [
        ["DNS (UDP)", 53, "UDP", dnsServer, true],
        ["DNS (TCP)", 53, "TCP", dnsServer, true],
        ["PostgreSQL outside the cluster", port, "TCP", { ip: "192.0.2.10" }, true],
        ["PostgreSQL in the cluster", port, "TCP", { namespace: "db", labels: { app: "postgres" } }, true],
        ["anything else", 443, "TCP", { ip: "192.0.2.10" }, false],
      ];
      for (const [what, p, protocol, dest, allowed] of cases)
        assert.equal(egressAllowed(policies, pod, p, protocol, dest), allowed, `port ${port}: ${what}`);
      const own = policies.find((p) => p.metadata.name === "agentry-gateway-migrate") as unknown as Hooked;
      assert.ok(own, "the migration Job's own policy");
      const rest = policies.filter((p) => p !== (own as unknown));
      assert.equal(egressAllowed(rest, pod, port, "TCP", { ip: "192.0.2.10" }), false, "denied without it");
      // Both are hooks of the same events; the policy's lower weight creates it before the Job.
      const hook = (d: Hooked) => d.metadata.annotations?.["helm.sh/hook"];
      const weight = (d: Hooked) => Number(d.metadata.annotations?.["helm.sh/hook-weight"] ?? 0);
      assert.equal(hook(own), hook(job));
      assert.ok(weight(own) < weight(job), "policy before Job");
      const deployment = docs.find((d) => d.kind === "Deployment" && d.metadata.name === "agentry-gateway");
      const gw = (deployment as unknown as typeof job).spec.template.metadata.labels;
      const gateway = { namespace: "agentry-system", labels: gw };
      assert.ok(egressAllowed(policies, gateway, port, "TCP", { ip: "192.0.2.10" }), "the gateway too");
    }
  });

  it("takes every image, the Pipeline dispatcher's included, from image.registry and image.tag", async () => {
    const args = [
      ["--set", "image.registry=registry.example:5000/mirror/agentry", "--set", "image.tag=9.8.7"],
      ["--set", "gateway.database.urlSecret=pg", "--set", "webhook.certManager.enabled=true"],
      ["--set", "metrics.serviceMonitor.enabled=true", "--set", "crds.install=false"],
    ].flat();
    const res = await helm(["template", "agentry", chart, "--namespace", "agentry-system", ...args]);
    assert.equal(res.code, 0, res.stderr);
    const images: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (!node || typeof node !== "object") return;
      for (const [key, value] of Object.entries(node)) {
        if ((key === "containers" || key === "initContainers") && Array.isArray(value))
          for (const c of value as { image: string; args?: string[] }[]) {
            images.push(c.image);
            for (const arg of c.args ?? [])
              if (arg.startsWith("--dispatcher-image=")) images.push(arg.slice(19));
          }
        walk(value);
      }
    };
    walk(yaml.loadAll(res.stdout));
    const expected = ["agent", "gateway", "operator"].map(
      (n) => `registry.example:5000/mirror/agentry/${n}:9.8.7`,
    );
    assert.deepEqual(
      [...new Set(images)].sort(),
      expected,
      "operator, webhook, gateway, migration, dispatcher",
    );
    assert.equal(images.length, 5);
    assert.doesNotMatch(res.stdout, /ghcr\.io/, "no image name left hard-coded");
  });

  it("renders objects the apiserver accepts (kubectl apply --dry-run=server)", async (t) => {
    const namespace = await testNamespace(t, RESTRICTED);
    const res = await helm(["template", release(), chart, "--namespace", namespace]);
    assert.equal(res.code, 0, res.stderr);
    const apply = await kubectl(["apply", "--dry-run=server", "-n", namespace, "-f", "-"], res.stdout);
    assert.equal(apply.code, 0, apply.stderr);
  });

  it("manifests/ applies as rendered (server-side dry run)", async (t) => {
    const namespace = await testNamespace(t, RESTRICTED);
    const text = await readFile(join(repoRoot, "manifests", "agentry.yaml"), "utf8");
    const docs = (yaml.loadAll(text) as Doc[]).filter(
      (d) => d && d.kind !== "Namespace" && d.kind !== "CustomResourceDefinition",
    );
    const body = docs
      .map((d) => yaml.dump(d))
      .join("---\n")
      .replaceAll("agentry-system", namespace);
    const apply = await kubectl(["apply", "--dry-run=server", "-f", "-"], body);
    assert.equal(apply.code, 0, apply.stderr);
  });

  for (const profile of ["values-dev.yaml", "values-staging.yaml", "values-prod.yaml"]) {
    it(`installs, upgrades and uninstalls with ${profile}`, async (t) => {
      const namespace = await testNamespace(t, RESTRICTED);
      const name = release();
      t.after(() => helm(["uninstall", name, "-n", namespace]).then(() => undefined));
      // kwok runs no webhook process: admit only a label nobody carries, or the shared
      // cluster's agentry writes would fail against the Fail policy meanwhile. The shared
      // cluster's CRDs are kubectl's (test/run.ts); upgrade.test.ts owns CRDs by Helm.
      const scope = [
        "--set-json",
        `webhook.namespaceSelector={"matchLabels":{"agentry.dev/chart-test":"${name}"}}`,
        "--set",
        "crds.install=false",
      ];
      const install = await helm([
        "install",
        name,
        chart,
        "-n",
        namespace,
        "-f",
        join(chart, profile),
        ...scope,
        "--wait",
        "--timeout",
        "120s",
      ]);
      assert.equal(install.code, 0, install.stderr);
      assert.match(install.stdout, /agentry 0\.1\.0 is installed/, "NOTES.txt printed");
      const vwc = await api(k8s.AdmissionregistrationV1Api).readValidatingWebhookConfiguration({
        name: `${name}-agentry-validating`,
      });
      assert.deepEqual(vwc.webhooks?.[0]?.namespaceSelector?.matchLabels, { "agentry.dev/chart-test": name });
      const apps = api(k8s.AppsV1Api);
      const deployments = await apps.listNamespacedDeployment({ namespace });
      assert.ok(deployments.items.length >= 1);
      for (const d of deployments.items) {
        assert.equal(d.status?.readyReplicas, d.spec?.replicas, `${d.metadata?.name} ready`);
      }
      const upgrade = await helm([
        "upgrade",
        name,
        chart,
        ...scope,
        "-n",
        namespace,
        "-f",
        join(chart, profile),
        "--set",
        "operator.logLevel=warn",
        "--wait",
      ]);
      assert.equal(upgrade.code, 0, upgrade.stderr);
      const op = await apps.readNamespacedDeployment({ namespace, name: `${name}-agentry-operator` });
      assert.ok(op.spec?.template.spec?.containers[0]?.args?.includes("--log-level=warn"));
      const uninstall = await helm(["uninstall", name, "-n", namespace, "--wait"]);
      assert.equal(uninstall.code, 0, uninstall.stderr);
      await waitFor(
        "release objects gone",
        async () => (await apps.listNamespacedDeployment({ namespace })).items.length === 0,
      );
      const crb = await api(k8s.RbacAuthorizationV1Api).listClusterRoleBinding();
      assert.ok(!crb.items.some((b) => b.metadata?.name?.startsWith(name)), "cluster-scoped objects removed");
      const hooks = await api(k8s.AdmissionregistrationV1Api).listValidatingWebhookConfiguration();
      assert.ok(
        !hooks.items.some((h) => h.metadata?.name?.startsWith(name)),
        "webhook configurations removed",
      );
    });
  }

  it("gives the operator only the permissions on its allowlist", async () => {
    const docs = await render();
    const allow: Record<string, string[]> = {
      "agentry.dev/agentruntimes": ["get", "list", "watch", "patch", "update"],
      "agentry.dev/pipelines": ["get", "list", "watch", "patch", "update"],
      "agentry.dev/sandboxfleets": ["get", "list", "watch", "patch", "update"],
      "agentry.dev/workspaces": ["get", "list", "watch", "patch", "update", "delete"],
      "agentry.dev/agentruntimes/status": ["get", "patch", "update"],
      "agentry.dev/pipelines/status": ["get", "patch", "update"],
      "agentry.dev/sandboxfleets/status": ["get", "patch", "update"],
      "agentry.dev/workspaces/status": ["get", "patch", "update"],
      "/pods": ["get", "list", "watch", "create", "patch", "delete"],
      "/services": ["get", "list", "watch", "create", "patch", "delete"],
      "/configmaps": ["get", "list", "watch", "create", "patch", "delete"],
      "/persistentvolumeclaims": ["get", "list", "watch", "create", "patch", "delete"],
      "/events": ["create", "patch"],
      "apps/deployments": ["get", "list", "watch", "create", "patch", "delete"],
      "apps/replicasets": ["get", "list", "watch"],
      "batch/jobs": ["get", "list", "watch", "create", "patch", "delete"],
      "batch/cronjobs": ["get", "list", "watch", "create", "patch", "delete"],
      "networking.k8s.io/networkpolicies": ["get", "list", "watch", "create", "patch", "delete"],
      "coordination.k8s.io/leases": ["get", "create", "update"],
      "authentication.k8s.io/tokenreviews": ["create"],
    };
    const roles = docs.filter(
      (d) => (d.kind === "ClusterRole" || d.kind === "Role") && d.metadata.name.includes("operator"),
    );
    assert.ok(roles.length >= 2);
    for (const role of roles) {
      for (const rule of role.rules ?? []) {
        for (const field of [rule.apiGroups, rule.resources, rule.verbs])
          assert.ok(!field.includes("*"), `${role.metadata.name}: wildcard`);
        for (const verb of rule.verbs)
          assert.ok(!["escalate", "bind", "impersonate"].includes(verb), `${role.metadata.name}: ${verb}`);
        const named = (rule as { resourceNames?: string[] }).resourceNames;
        for (const group of rule.apiGroups) {
          for (const resource of rule.resources) {
            if (resource === "secrets") {
              // Create (RBAC cannot limit it by name); anything else only on Secrets it names:
              // the namespaces' tokens Secret and, in its own namespace, its signing key.
              const own = role.kind === "ClusterRole" ? "agentry-tokens" : "agentry-operator-signing-key";
              assert.ok(
                (rule.verbs.length === 1 && rule.verbs[0] === "create" && !named) ||
                  (named?.length === 1 &&
                    named[0] === own &&
                    rule.verbs.every((v) => ["get", "update", "delete"].includes(v))),
                `${role.metadata.name}: Secrets only created, or read and written by name (${JSON.stringify(rule)})`,
              );
              assert.ok(
                !rule.verbs.some((v) => v === "list" || v === "watch"),
                "never lists or watches Secrets",
              );
              continue;
            }
            const allowed = allow[`${group}/${resource}`];
            assert.ok(allowed, `${group}/${resource} is not on the allowlist`);
            for (const verb of rule.verbs)
              assert.ok(allowed.includes(verb), `${group}/${resource}: ${verb} not allowed`);
          }
        }
      }
    }
    const leases = roles.find((r) => r.kind === "Role");
    assert.ok(
      leases?.rules?.some((r) => r.resources.includes("leases")),
      "leases only through a namespaced Role",
    );
  });
  it("serves the store broker to sandbox pods, and reads store Secrets only as configured", async () => {
    const secretRules = (docs: Doc[], kind: string) =>
      docs
        .filter((d) => d.kind === kind && d.metadata.name.includes("operator"))
        .flatMap((d) => d.rules ?? [])
        .filter((r) => r.resources.includes("secrets") && r.verbs.includes("get"))
        .filter((r) => kind === "Role" || !(r as { resourceNames?: string[] }).resourceNames);
    const args = (docs: Doc[]) => {
      const dep = docs.find(
        (d) => d.kind === "Deployment" && d.metadata.name.endsWith("-operator"),
      ) as unknown as {
        spec: { template: { spec: { containers: { args: string[]; ports: { name: string }[] }[] } } };
      };
      return dep.spec.template.spec.containers[0]!;
    };

    const plain = await render();
    const operator = args(plain);
    assert.ok(operator.args.includes("--broker-addr=0.0.0.0:8082"));
    assert.ok(
      operator.args.some((a) => /^--broker-url=http:\/\/[a-z0-9-]+-operator\.[a-z0-9-]+\.svc:8082$/.test(a)),
    );
    assert.ok(
      !operator.args.some((a) => a.startsWith("--default-store-")),
      "no default store unless configured",
    );
    assert.ok(operator.ports.some((p) => p.name === "broker"));
    const service = plain.find(
      (d) =>
        d.kind === "Service" &&
        (d as unknown as { spec: { ports: { name: string }[] } }).spec.ports.some((p) => p.name === "broker"),
    );
    assert.ok(service, "a Service with the broker port");
    assert.ok(
      operator.args.includes(
        `--broker-url=http://${service.metadata.name}.${service.metadata.namespace}.svc:8082`,
      ),
    );
    const policy = plain.find(
      (d) => d.kind === "NetworkPolicy" && d.metadata.name.endsWith("-operator"),
    ) as unknown as {
      spec: {
        ingress: {
          from?: { podSelector?: { matchLabels?: Record<string, string> } }[];
          ports: { port: number }[];
        }[];
      };
    };
    const brokerIngress = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === 8082));
    assert.deepEqual(
      brokerIngress?.from?.map((f) => f.podSelector?.matchLabels),
      [{ "app.kubernetes.io/name": "agentry-sandbox" }],
      "only sandbox pods reach the broker",
    );
    assert.deepEqual(secretRules(plain, "ClusterRole"), [], "no cluster-wide Secret read by default");
    assert.deepEqual(
      secretRules(plain, "Role").filter(
        (r) => (r as { resourceNames?: string[] }).resourceNames?.[0] === "store",
      ),
      [],
    );

    const stored = await render([
      "--set",
      "objectStore.default.endpoint=https://s3.example:9000",
      "--set",
      "objectStore.default.bucket=workspaces",
      "--set",
      "objectStore.default.prefix=prod",
      "--set",
      "objectStore.default.credentialsSecret=store",
    ]);
    const flags = args(stored).args.filter((a) => a.startsWith("--default-store-"));
    assert.deepEqual(flags.sort(), [
      "--default-store-bucket=workspaces",
      "--default-store-endpoint=https://s3.example:9000",
      "--default-store-prefix=prod",
      "--default-store-region=us-east-1",
      "--default-store-secret=store",
    ]);
    const named = secretRules(stored, "Role").filter(
      (r) => (r as { resourceNames?: string[] }).resourceNames?.[0] === "store",
    );
    assert.equal(named.length, 1, "the default store's one Secret, by name");
    assert.deepEqual(named[0]!.verbs, ["get"]);
    assert.ok(
      stored.some((d) => d.kind === "RoleBinding" && d.metadata.name.endsWith("-operator-default-store")),
    );

    const fleets = await render(["--set", "objectStore.fleetStores=true"]);
    assert.deepEqual(
      secretRules(fleets, "ClusterRole").map((r) => r.verbs),
      [["get"]],
      "get only, when fleets name stores",
    );

    const half = await helm([
      "template",
      "x",
      chart,
      "--set",
      "objectStore.default.endpoint=https://s3.example",
    ]);
    assert.notEqual(half.code, 0, "an endpoint without bucket and Secret is refused");
    assert.match(half.stderr, /bucket|credentialsSecret/);
  });

  it("gives the webhook no wildcard and no cluster-wide Secret read unless checkSecretRefs is on", async () => {
    const secretRules = (docs: Doc[], kind: string) =>
      docs
        .filter((d) => d.kind === kind && d.metadata.name.includes("webhook"))
        .flatMap((d) => d.rules ?? [])
        .filter((r) => r.resources.includes("secrets"));
    const plain = await render();
    for (const d of plain.filter((x) => x.kind.endsWith("Role") && x.metadata.name.includes("webhook"))) {
      for (const r of d.rules ?? [])
        for (const f of [r.apiGroups, r.resources, r.verbs]) assert.ok(!f.includes("*"));
    }
    assert.deepEqual(secretRules(plain, "ClusterRole"), [], "no cluster-wide Secret access by default");
    for (const r of secretRules(plain, "Role")) {
      const named = (r as { resourceNames?: string[] }).resourceNames;
      assert.ok(r.verbs.every((v) => v === "create") || named?.length === 1, "only its own TLS Secret");
    }
    const checking = await render(["--set", "webhook.checkSecretRefs=true"]);
    assert.deepEqual(secretRules(checking, "ClusterRole")[0]?.verbs, ["get"], "only get, only when asked");
  });

  it("lets the gateway impersonate callers but read no Secret beyond its named tokens Secret", async () => {
    const docs = await render([
      "--set",
      "gateway.tokensSecret=gateway-tokens",
      "--set",
      "gateway.database.urlSecret=pg",
    ]);
    const roles = docs.filter((d) => d.kind.endsWith("Role") && d.metadata.name.includes("gateway"));
    const rules = roles.flatMap((r) => (r.rules ?? []).map((rule) => ({ ...rule, role: r })));
    for (const r of rules) for (const f of [r.apiGroups, r.resources, r.verbs]) assert.ok(!f.includes("*"));
    assert.ok(
      rules.some((r) => r.verbs.includes("impersonate")),
      "impersonation is how RBAC stays the caller's",
    );
    const secrets = rules.filter((r) => r.resources.includes("secrets"));
    for (const r of secrets) assert.equal(r.role.kind, "Role", "namespaced");
    const named = (r: (typeof secrets)[number]) => (r as { resourceNames?: string[] }).resourceNames;
    const reads = secrets.filter((r) => r.verbs.includes("get"));
    assert.deepEqual(
      reads.map((r) => JSON.stringify([named(r), r.verbs])).sort(),
      [
        JSON.stringify([["agentry-gateway-signing-key"], ["get", "update"]]),
        JSON.stringify([["gateway-tokens"], ["get"]]),
      ],
      "reads only its tokens Secret and its own signing key, by name",
    );
    for (const r of secrets.filter((x) => !x.verbs.includes("get")))
      assert.deepEqual(r.verbs, ["create"], "otherwise only creates (its signing key)");
    const job = docs.find((d) => d.kind === "Job") as unknown as {
      metadata: { annotations: Record<string, string> };
    };
    assert.equal(
      job.metadata.annotations["helm.sh/hook"],
      "pre-install,pre-upgrade",
      "migrations run as a hook",
    );
  });
});
