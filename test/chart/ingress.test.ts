// The gateway's optional Ingress: off by default; when on, every host and path goes to the
// gateway's Service, and the apiserver accepts what the chart renders.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { chart, helm, render, RESTRICTED, type Doc } from "./helm.ts";

type Ingress = Doc & {
  metadata: { labels?: Record<string, string> };
  spec: {
    ingressClassName?: string;
    tls?: { hosts: string[]; secretName: string }[];
    rules: {
      host: string;
      http: {
        paths: {
          path: string;
          pathType: string;
          backend: { service: { name: string; port: { name: string } } };
        }[];
      };
    }[];
  };
};
type Service = Doc & { spec: { ports: { name: string; port: number }[] } };

const VALUES = [
  "--set",
  "gateway.ingress.enabled=true",
  "--set",
  "gateway.ingress.className=nginx",
  "--set-string",
  "gateway.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-read-timeout=3600",
  "--set-json",
  `gateway.ingress.hosts=${JSON.stringify([
    { host: "agentry.example.com" },
    {
      host: "*.api.example.com",
      paths: [
        { path: "/v1", pathType: "Prefix" },
        { path: "/openapi.json", pathType: "Exact" },
      ],
    },
  ])}`,
  "--set-json",
  `gateway.ingress.tls=${JSON.stringify([{ hosts: ["agentry.example.com"], secretName: "agentry-gateway-tls" }])}`,
];

describe("Helm chart: the gateway's Ingress", () => {
  it("is off by default", async () => {
    assert.deepEqual(
      (await render()).filter((d) => d.kind === "Ingress"),
      [],
    );
  });

  it("routes every host and path to the gateway's Service", async () => {
    const docs = await render(VALUES);
    const ingress = docs.find((d) => d.kind === "Ingress") as Ingress | undefined;
    assert.ok(ingress);
    const service = docs.find(
      (d) => d.kind === "Service" && d.metadata.name === "agentry-gateway",
    ) as Service;
    assert.equal(ingress.spec.ingressClassName, "nginx");
    assert.equal(ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-read-timeout"], "3600");
    assert.deepEqual(ingress.spec.tls, [
      { hosts: ["agentry.example.com"], secretName: "agentry-gateway-tls" },
    ]);
    const routes = ingress.spec.rules.flatMap((r) =>
      r.http.paths.map((p) => `${r.host}${p.path} ${p.pathType}`),
    );
    assert.deepEqual(routes, [
      "agentry.example.com/ Prefix",
      "*.api.example.com/v1 Prefix",
      "*.api.example.com/openapi.json Exact",
    ]);
    for (const path of ingress.spec.rules.flatMap((r) => r.http.paths)) {
      assert.equal(path.backend.service.name, service.metadata.name);
      assert.ok(service.spec.ports.some((p) => p.name === path.backend.service.port.name));
    }
  });

  it("says what is missing when enabled without hosts, and rejects a bad host", async () => {
    const none = await helm(["template", "x", chart, "--set", "gateway.ingress.enabled=true"]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /gateway\.ingress\.hosts/);
    const bad = await helm([
      "template",
      "x",
      chart,
      "--set-json",
      'gateway.ingress.hosts=[{"host":"Bad Host"}]',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /host/);
  });

  it("renders an Ingress the apiserver accepts (server-side dry run)", async (t) => {
    const namespace = await testNamespace(t, RESTRICTED);
    const res = await helm(["template", "x", chart, "--namespace", namespace, ...VALUES]);
    assert.equal(res.code, 0, res.stderr);
    const dry = await kubectl(["apply", "--dry-run=server", "-n", namespace, "-f", "-"], res.stdout);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /ingress\.networking\.k8s\.io\/x-agentry-gateway created \(server dry run\)/);
  });
});
