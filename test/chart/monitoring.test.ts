// The chart's monitoring: ServiceMonitors for every component and a PodMonitor for the
// runtimes, and every metric its Grafana dashboard and PrometheusRule read is one the running
// programs export (the operator, the webhook and the gateway, each started as it runs; the
// sandbox and agent runtimes' registries, which their own tests read from the running
// programs' metrics ports), so neither silently shows nothing.
import assert from "node:assert/strict";
import { get } from "node:https";
import { describe, it } from "node:test";
import { testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { startWebhook, webhookId } from "../harness/webhook.ts";
import { startGateway } from "../gateway/harness.ts";
import { render } from "./helm.ts";
import { METRICS_PORT_NAME } from "../../contracts/metrics.ts";
import { AgentMetrics } from "../../runtimes/agent/metrics.ts";
import { SandboxMetrics } from "../../runtimes/sandbox/metrics.ts";

type Obj = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: unknown };

/** Metric names an expression reads: agentry's, controller-runtime's, Node's and Prometheus' `up`. */
function metricsIn(expr: string): string[] {
  const names = expr.match(
    /\b(agentry_[a-z0-9_]+|controller_runtime_[a-z0-9_]+|workqueue_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b/g,
  );
  return (names ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, ""));
}

/** Names declared by `# TYPE` lines of a Prometheus exposition. */
const exported = (text: string) => [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);

const insecureText = (url: string) =>
  new Promise<string>((resolve, reject) => {
    get(url, { rejectUnauthorized: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });

describe("chart monitoring", () => {
  it("ServiceMonitors scrape the operator, webhook and gateway; the rules and dashboard read exported metrics", async (t) => {
    const docs = (await render([
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--set",
      "metrics.prometheusRule.enabled=true",
      "--set",
      "metrics.grafanaDashboard.enabled=true",
    ])) as Obj[];
    const monitors = docs.filter((d) => d.kind === "ServiceMonitor").map((d) => d.metadata.name);
    assert.deepEqual(monitors.sort(), ["agentry-gateway", "agentry-operator", "agentry-webhook"]);
    const gatewayMonitor = docs.find(
      (d) => d.kind === "ServiceMonitor" && d.metadata.name === "agentry-gateway",
    );
    assert.deepEqual(
      (gatewayMonitor?.spec as { endpoints: { port: string }[] }).endpoints.map((e) => e.port),
      ["metrics"],
      "the gateway is scraped on its metrics port, not its API port",
    );
    const podMonitors = docs.filter((d) => d.kind === "PodMonitor");
    assert.deepEqual(
      podMonitors.map((d) => [
        d.metadata.name,
        (d.spec as { podMetricsEndpoints: { port: string }[] }).podMetricsEndpoints[0]!.port,
      ]),
      [["agentry-runtimes", METRICS_PORT_NAME]],
    );

    const rule = docs.find((d) => d.kind === "PrometheusRule");
    const alerts = (rule?.spec as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap(
      (g) => g.rules,
    );
    assert.deepEqual(
      alerts.map((a) => a.alert),
      [
        "AgentryOperatorDown",
        "AgentryNoLeader",
        "AgentryReconcileErrors",
        "AgentryFleetAtMaxUnderPressure",
        "AgentryWorkspacesWaiting",
        "AgentryWebhookFailing",
        "AgentryGateway5xx",
      ],
    );
    const dashboard = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === "agentry-dashboard");
    const panels = (
      JSON.parse(dashboard!.data!["agentry.json"]!) as {
        panels: { title: string; targets: { expr: string }[] }[];
      }
    ).panels;
    assert.ok(panels.length >= 10, "a dashboard of fleets, workspaces, controllers, gateway and webhook");

    const wanted = new Map<string, string>(); // metric → where it is read
    for (const a of alerts) for (const m of metricsIn(a.expr)) wanted.set(m, `alert ${a.alert}`);
    for (const p of panels)
      for (const target of p.targets)
        for (const m of metricsIn(target.expr)) wanted.set(m, `panel "${p.title}"`);

    // What the programs export, each started the way it runs.
    const ns = await testNamespace(t);
    const operator = await startOperator(t, { namespaces: [ns], leaderElect: false });
    const ident = webhookId();
    const hook = await startWebhook(t, ident, { namespace: ns });
    const webhookText = await waitFor("the webhook's /metrics", () =>
      insecureText(`https://127.0.0.1:${hook.port}/metrics`).then((text) =>
        text.includes("# TYPE") ? text : undefined,
      ),
    );
    const gw = await startGateway(t);
    const have = new Set([
      "up", // Prometheus' own, per scrape target
      ...exported(await operator.metrics()),
      ...exported(webhookText),
      ...exported(await (await fetch(gw.metricsUrl)).text()),
      ...exported(await new SandboxMetrics({ workspaces: () => 0, defaults: false }).registry.metrics()),
      ...exported(await new AgentMetrics({ running: () => 0, defaults: false }).registry.metrics()),
    ]);
    const missing = [...wanted].filter(([m]) => !have.has(m)).map(([m, where]) => `${m} (${where})`);
    assert.deepEqual(missing, [], "every metric the rules and the dashboard read is exported");
    assert.ok(wanted.size >= 15, [...wanted.keys()].join(" "));
  });
});
