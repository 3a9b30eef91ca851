import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { FleetMetrics, type FleetSample } from "./metrics.ts";

const sample = (over: Partial<FleetSample> = {}): FleetSample => ({
  namespace: "team",
  fleet: "pool",
  minReplicas: 1,
  maxReplicas: 5,
  desiredReplicas: 2,
  readyReplicas: 2,
  placed: 3,
  waiting: 1,
  capacity: 8,
  sandboxes: [
    { pod: "pool-a", cpu: 0.5, memory: 0.25, draining: false },
    { pod: "pool-b", draining: true },
  ],
  ...over,
});

describe("fleet metrics", () => {
  it("exports a fleet's replicas, workspaces, capacity and each sandbox's pressure", async () => {
    const registry = new Registry();
    const m = new FleetMetrics(registry);
    m.observe(sample());
    const text = await registry.metrics();
    for (const line of [
      'agentry_fleet_replicas{namespace="team",fleet="pool",kind="desired"} 2',
      'agentry_fleet_replicas{namespace="team",fleet="pool",kind="max"} 5',
      'agentry_fleet_workspaces{namespace="team",fleet="pool",state="waiting"} 1',
      'agentry_fleet_capacity{namespace="team",fleet="pool"} 8',
      'agentry_sandbox_pressure{namespace="team",fleet="pool",pod="pool-a",resource="cpu"} 0.5',
      'agentry_sandbox_draining{namespace="team",fleet="pool",pod="pool-b"} 1',
    ])
      assert.ok(text.includes(line), `${line}\n---\n${text}`);
    assert.ok(!text.includes('pod="pool-b",resource='), "no pressure series for a sandbox not sampled");
  });

  it("drops the series of sandboxes and fleets that are gone", async () => {
    const registry = new Registry();
    const m = new FleetMetrics(registry);
    m.observe(sample());
    m.observe(sample({ sandboxes: [{ pod: "pool-c", cpu: 0.1, memory: 0.1, draining: false }] }));
    let text = await registry.metrics();
    assert.ok(!text.includes("pool-a") && !text.includes("pool-b") && text.includes("pool-c"));
    m.forget("team", "pool");
    text = await registry.metrics();
    assert.ok(!/fleet="pool"/.test(text), text);
  });

  it("observes placement latency", async () => {
    const registry = new Registry();
    const m = new FleetMetrics(registry);
    m.placed(1.5);
    m.placed(-1); // a clock step backwards is not a latency
    const text = await registry.metrics();
    assert.ok(text.includes("agentry_workspace_placement_seconds_count 1"), text);
    assert.ok(text.includes('agentry_workspace_placement_seconds_bucket{le="2"} 1'));
  });
});
