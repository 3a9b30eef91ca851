// Where the chart's pods run: priorityClassName, nodeSelector, tolerations, affinity and
// topologySpreadConstraints for every component (operator, webhook, gateway, and the
// gateway's migration Job), rendered and then scheduled for real by kube-scheduler onto
// kwok's nodes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { api, kubeConfig, testNamespace } from "../harness/cluster.ts";
import { chart, helm, release, render, RESTRICTED, type Doc } from "./helm.ts";

type PodSpec = {
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  topologySpreadConstraints?: {
    topologyKey: string;
    labelSelector?: { matchLabels?: Record<string, string> };
  }[];
};
type Workload = Doc & { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

// Where each component's values live, and the pod labels its spread constraints select.
const COMPONENTS = [
  { values: "operator", kind: "Deployment", name: "agentry-operator", pods: "agentry-operator" },
  { values: "webhook", kind: "Deployment", name: "agentry-webhook", pods: "agentry-webhook" },
  { values: "gateway", kind: "Deployment", name: "agentry-gateway", pods: "agentry-gateway" },
  {
    values: "gateway.migrations",
    kind: "Job",
    name: "agentry-gateway-migrate-1",
    pods: "agentry-gateway-migrate",
  },
] as const;

/** The same scheduling values for every component, matching kwok's nodes (label type=kwok). */
function schedulingValues(priorityClass: string): string[] {
  const affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }] },
        ],
      },
    },
  };
  const spread = [
    { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "DoNotSchedule" },
    {
      maxSkew: 2,
      topologyKey: "kubernetes.io/hostname",
      whenUnsatisfiable: "ScheduleAnyway",
      labelSelector: { matchLabels: { "app.kubernetes.io/part-of": "agentry" } },
    },
  ];
  const tolerations = [{ key: "agentry.dev/dedicated", operator: "Exists", effect: "NoSchedule" }];
  return COMPONENTS.flatMap(({ values }) => [
    "--set",
    `${values}.priorityClassName=${priorityClass}`,
    "--set",
    `${values}.nodeSelector.type=kwok`,
    "--set-json",
    `${values}.tolerations=${JSON.stringify(tolerations)}`,
    "--set-json",
    `${values}.affinity=${JSON.stringify(affinity)}`,
    "--set-json",
    `${values}.topologySpreadConstraints=${JSON.stringify(spread)}`,
  ]);
}

describe("Helm chart scheduling values", () => {
  it("reach the pods of every component; a spread constraint without labelSelector selects the component", async () => {
    const docs = await render([
      "--set",
      "gateway.database.urlSecret=pg",
      ...schedulingValues("agentry-high"),
    ]);
    for (const c of COMPONENTS) {
      const w = docs.find((d) => d.kind === c.kind && d.metadata.name === c.name) as Workload | undefined;
      assert.ok(w, `${c.kind} ${c.name}`);
      const pod = w.spec.template.spec;
      assert.equal(pod.priorityClassName, "agentry-high", c.values);
      assert.deepEqual(pod.nodeSelector, { type: "kwok" }, c.values);
      assert.equal(pod.tolerations?.length, 1, c.values);
      assert.ok(pod.affinity, c.values);
      const [zone, host] = pod.topologySpreadConstraints ?? [];
      assert.equal(zone?.topologyKey, "topology.kubernetes.io/zone");
      assert.deepEqual(zone?.labelSelector?.matchLabels, {
        "app.kubernetes.io/name": c.pods,
        "app.kubernetes.io/instance": "agentry",
      });
      for (const [k, v] of Object.entries(zone?.labelSelector?.matchLabels ?? {}))
        assert.equal(
          w.spec.template.metadata.labels[k],
          v,
          `${c.values}: the constraint selects its own pods`,
        );
      assert.deepEqual(
        host?.labelSelector?.matchLabels,
        { "app.kubernetes.io/part-of": "agentry" },
        "kept as given",
      );
    }
  });

  it("spread the Deployments over nodes by default, and not at all with []", async () => {
    const spreads = (docs: Doc[]) =>
      docs
        .filter((d) => d.kind === "Deployment")
        .map((d) => (d as Workload).spec.template.spec.topologySpreadConstraints?.map((t) => t.topologyKey));
    assert.deepEqual(spreads(await render()), [
      ["kubernetes.io/hostname"],
      ["kubernetes.io/hostname"],
      ["kubernetes.io/hostname"],
    ]);
    const off = COMPONENTS.flatMap(({ values }) => ["--set-json", `${values}.topologySpreadConstraints=[]`]);
    assert.deepEqual(spreads(await render(off)), [undefined, undefined, undefined]);
  });

  it("reject a mistyped value, naming it", async () => {
    for (const [value, key] of [
      ["operator.priorityClassName=Not_A_Name", "priorityClassName"],
      ['webhook.tolerations=[{"operator":"Sometimes"}]', "operator"],
      ['gateway.topologySpreadConstraints=[{"maxSkew":1}]', "topologyKey"],
      ['gateway.migrations.affinity={"nodeAfinity":{}}', "nodeAfinity"],
    ] as const) {
      const flag = value.includes("[") || value.includes("{") ? "--set-json" : "--set";
      const res = await helm(["template", "x", chart, flag, value]);
      assert.notEqual(res.code, 0, value);
      assert.match(res.stderr, new RegExp(key), value);
    }
  });

  it("are honoured by the real scheduler: every pod, the migration Job's included, runs where they say", async (t) => {
    const namespace = await testNamespace(t, RESTRICTED);
    const name = release();
    const scheduling = api(k8s.SchedulingV1Api);
    const priorityClass = `${name}-high`;
    await scheduling.createPriorityClass({ body: { metadata: { name: priorityClass }, value: 1000 } });
    t.after(() => scheduling.deletePriorityClass({ name: priorityClass }).then(() => undefined));
    await api(k8s.CoreV1Api).createNamespacedSecret({
      namespace,
      body: { metadata: { name: "pg" }, stringData: { url: "postgres://agentry@db.example:5432/agentry" } },
    });
    t.after(() => helm(["uninstall", name, "-n", namespace]).then(() => undefined));
    // The migration Job is a hook, deleted once it succeeded: watch its pod while it exists.
    const seen = new Map<string, k8s.V1Pod>();
    const watch = await new k8s.Watch(kubeConfig()).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      {},
      (_type: string, pod: k8s.V1Pod) => void seen.set(pod.metadata?.name ?? "", pod),
      () => undefined,
    );
    t.after(() => watch.abort());
    const install = await helm([
      "install",
      name,
      chart,
      "-n",
      namespace,
      // The shared cluster's CRDs are kubectl's; kwok runs no webhook: admit no namespace.
      "--set",
      "crds.install=false",
      "--set-json",
      `webhook.namespaceSelector={"matchLabels":{"agentry.dev/chart-test":"${name}"}}`,
      "--set",
      "gateway.database.urlSecret=pg",
      ...schedulingValues(priorityClass),
      "--wait",
      "--timeout",
      "120s",
    ]);
    assert.equal(install.code, 0, install.stderr);
    const pods = (await api(k8s.CoreV1Api).listNamespacedPod({ namespace })).items;
    const migrate = [...seen.values()].filter(
      (p) => p.metadata?.labels?.["app.kubernetes.io/name"] === "agentry-gateway-migrate",
    );
    const byComponent = new Map<string, k8s.V1Pod[]>([["agentry-gateway-migrate", migrate]]);
    for (const pod of pods) {
      const component = pod.metadata?.labels?.["app.kubernetes.io/name"] ?? "";
      byComponent.set(component, [...(byComponent.get(component) ?? []), pod]);
    }
    for (const c of ["agentry-operator", "agentry-webhook", "agentry-gateway", "agentry-gateway-migrate"]) {
      const list = byComponent.get(c) ?? [];
      assert.ok(list.length >= 1, `${c} pods`);
      for (const pod of list) {
        assert.equal(pod.spec?.priority, 1000, `${c}: the PriorityClass's value`);
        assert.ok(pod.spec?.nodeName?.startsWith("kwok-node-"), `${c} scheduled`);
      }
      // Two replicas, DoNotSchedule over zones with skew 1: two zones (one node each here).
      if (c !== "agentry-gateway-migrate") {
        assert.equal(list.length, 2, c);
        assert.equal(new Set(list.map((p) => p.spec?.nodeName)).size, 2, `${c}: one pod per zone`);
      }
    }
    // The migration pod ran to completion (kwok completes Job pods): the hook passed.
    assert.ok(
      migrate.some((p) => p.status?.phase === "Succeeded"),
      "the migration pod succeeded",
    );
  });
});
