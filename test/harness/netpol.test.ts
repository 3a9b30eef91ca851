import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectionAllowed, egressAllowed, ingressAllowed, type Destination, type Policy } from "./netpol.ts";

const policy = (name: string, spec: Policy["spec"]): Policy => ({
  metadata: { name, namespace: "ns" },
  spec,
});
const denyAll = policy("deny", {
  podSelector: { matchLabels: { app: "x" } },
  policyTypes: ["Ingress", "Egress"],
});
const dns = policy("dns", {
  podSelector: { matchLabels: { app: "x", role: "migrate" } },
  policyTypes: ["Egress"],
  egress: [
    {
      ports: [
        { port: 53, protocol: "UDP" },
        { port: 53, protocol: "TCP" },
      ],
    },
  ],
});
const toCidr = policy("cidr", {
  podSelector: {},
  policyTypes: ["Egress"],
  egress: [{ to: [{ ipBlock: { cidr: "10.1.0.0/16", except: ["10.1.2.0/24"] } }], ports: [{ port: 5432 }] }],
});
const toPods = policy("pods", {
  podSelector: {},
  policyTypes: ["Egress"],
  egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { db: "pg" } } }] }],
});
const ingressOnly = policy("in", { podSelector: {}, policyTypes: ["Ingress"] });
const migrate = { namespace: "ns", labels: { app: "x", role: "migrate" } };
const outside: Destination = { ip: "192.0.2.10" };
const pg: Destination = { namespace: "db", labels: { db: "pg" } };

describe("egressAllowed", () => {
  const cases: [string, Policy[], number, "TCP" | "UDP", Destination, boolean][] = [
    ["no policy selects the pod", [], 443, "TCP", outside, true],
    ["an Ingress-only policy leaves egress open", [ingressOnly], 443, "TCP", outside, true],
    ["default deny", [denyAll], 53, "UDP", outside, false],
    ["DNS over UDP", [denyAll, dns], 53, "UDP", outside, true],
    ["DNS over TCP", [denyAll, dns], 53, "TCP", outside, true],
    ["not another port", [denyAll, dns], 5432, "TCP", outside, false],
    ["an ipBlock", [denyAll, toCidr], 5432, "TCP", { ip: "10.1.9.9" }, true],
    ["an ipBlock's except", [denyAll, toCidr], 5432, "TCP", { ip: "10.1.2.3" }, false],
    ["outside the ipBlock", [denyAll, toCidr], 5432, "TCP", outside, false],
    ["a pod in any namespace", [denyAll, toPods], 5432, "TCP", pg, true],
    ["not another pod", [denyAll, toPods], 5432, "TCP", { namespace: "db", labels: { db: "mysql" } }, false],
  ];
  for (const [name, policies, port, protocol, dest, allowed] of cases)
    it(`${name} → ${allowed ? "allowed" : "denied"}`, () =>
      assert.equal(egressAllowed(policies, migrate, port, protocol, dest), allowed));

  it("ignores policies of other namespaces and pods they do not select", () => {
    const other = { ...denyAll, metadata: { name: "deny", namespace: "other" } };
    assert.equal(egressAllowed([other], migrate, 53, "UDP", outside), true);
    assert.equal(
      egressAllowed([denyAll], { namespace: "ns", labels: { app: "y" } }, 53, "UDP", outside),
      true,
    );
  });
});

describe("ingressAllowed and connectionAllowed", () => {
  const server = { namespace: "ns", labels: { app: "db" }, namespaceLabels: { team: "a" } };
  const onlyApp = policy("db", {
    podSelector: { matchLabels: { app: "db" } },
    policyTypes: ["Ingress"],
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { app: "web" } } },
          {
            namespaceSelector: { matchLabels: { team: "ops" } },
            podSelector: { matchLabels: { app: "admin" } },
          },
        ],
        ports: [{ port: 5432 }],
      },
    ],
  });
  const client = (namespace: string, app: string, team = "a") => ({
    namespace,
    labels: { app },
    namespaceLabels: { team },
  });
  const cases: [string, Policy[], ReturnType<typeof client>, number, boolean][] = [
    ["no policy selects the server", [], client("ns", "anything"), 5432, true],
    ["a listed pod of the server's namespace", [onlyApp], client("ns", "web"), 5432, true],
    ["a listed pod, another port", [onlyApp], client("ns", "web"), 22, false],
    ["the same labels in another namespace", [onlyApp], client("other", "web"), 5432, false],
    ["a listed pod of a selected namespace", [onlyApp], client("admin-ns", "admin", "ops"), 5432, true],
    ["an unlisted pod", [onlyApp], client("ns", "cron"), 5432, false],
    [
      "a listed pod whose own egress is denied",
      [onlyApp, { ...denyAll, spec: { ...denyAll.spec, podSelector: { matchLabels: { app: "web" } } } }],
      client("ns", "web"),
      5432,
      false,
    ],
  ];
  for (const [name, policies, from, port, allowed] of cases)
    it(`${name} → ${allowed ? "allowed" : "denied"}`, () =>
      assert.equal(connectionAllowed(policies, from, server, port), allowed));

  it("ingress from an address outside the cluster only through an ipBlock", () => {
    assert.equal(ingressAllowed([onlyApp], server, 5432, "TCP", outside), false);
  });
});
