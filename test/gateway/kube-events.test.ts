// GET /v1/namespaces/{ns}/events: a namespace's Kubernetes Events through the gateway, as
// the caller may list them, newest first, filtered by the object they are about and type.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { startGateway } from "./harness.ts";

type Item = {
  type: string;
  reason: string;
  message: string;
  count: number;
  object: { kind: string; name: string };
};

const event = (
  ns: string,
  name: string,
  kind: string,
  obj: string,
  type: string,
  reason: string,
  at: string,
) => `
apiVersion: v1
kind: Event
metadata: { name: ${name}, namespace: ${ns} }
involvedObject: { apiVersion: agentry.dev/v1alpha1, kind: ${kind}, name: ${obj}, namespace: ${ns} }
type: ${type}
reason: ${reason}
message: ${reason} happened to ${obj}
count: 2
firstTimestamp: "${at}"
lastTimestamp: "${at}"
source: { component: agentry-operator }
`;

describe("the gateway's events route", () => {
  it("lists a namespace's events newest first, filtered, and only for callers who may list them", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t, {
      tokens: { "nobody-token": { user: "nobody", groups: [], via: "token" } },
    });
    const applied = await kubectl(
      ["apply", "-f", "-"],
      [
        event(ns, "e1", "AgentRuntime", "coder", "Warning", "PodFailed", "2026-01-01T00:00:01Z"),
        event(ns, "e2", "AgentRuntime", "coder", "Normal", "Created", "2026-01-01T00:00:03Z"),
        event(ns, "e3", "Workspace", "ws", "Warning", "Unplaceable", "2026-01-01T00:00:02Z"),
      ].join("---\n"),
    );
    assert.equal(applied.code, 0, applied.stderr);

    const all = await gw.call("GET", `/v1/namespaces/${ns}/events`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    const items = all.body.items as Item[];
    assert.deepEqual(
      items.map((i) => i.reason),
      ["Created", "Unplaceable", "PodFailed"],
      "newest first",
    );
    assert.deepEqual(items[2], {
      type: "Warning",
      reason: "PodFailed",
      message: "PodFailed happened to coder",
      count: 2,
      lastTime: "2026-01-01T00:00:01Z",
      object: { kind: "AgentRuntime", name: "coder" },
      source: "agentry-operator",
    });

    const about = await gw.call(
      "GET",
      `/v1/namespaces/${ns}/events?kind=AgentRuntime&name=coder&type=Warning`,
    );
    assert.deepEqual(
      (about.body.items as Item[]).map((i) => i.reason),
      ["PodFailed"],
    );
    const one = await gw.call("GET", `/v1/namespaces/${ns}/events?limit=1`);
    assert.deepEqual(
      (one.body.items as Item[]).map((i) => i.reason),
      ["Created"],
    );

    for (const bad of ["kind=agent%20runtime", "type=Error", "limit=0", "limit=501", "name=UPPER"]) {
      const r = await gw.call("GET", `/v1/namespaces/${ns}/events?${bad}`);
      assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.body)}`);
    }
    const denied = await gw.call("GET", `/v1/namespaces/${ns}/events`, { token: "nobody-token" });
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    const post = await gw.call("POST", `/v1/namespaces/${ns}/events`, { body: {} });
    assert.equal(post.status, 405);
  });
});
