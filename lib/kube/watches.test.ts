import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeInformer } from "../../test/harness/fakekube.ts";
import { silentLogger } from "../log.ts";
import type { KubeObject } from "./client.ts";
import type { Controller } from "./controller.ts";
import { Metrics } from "./metrics.ts";
import { Lane } from "./queue.ts";
import {
  controllersFor,
  ownerKey,
  resyncChildren,
  watchChildren,
  watchOwn,
  type WatchingReconciler,
} from "./watches.ts";

const LABEL = "example.dev/owner";
const LANE_NAMES = Object.fromEntries(Object.entries(Lane).map(([k, v]) => [v, k]));

/** Records what is queued, in which lane. */
function recordingQueue() {
  const queued: string[] = [];
  const controller: Pick<Controller, "enqueue"> = {
    enqueue: (key, lane = Lane.Objects) => void queued.push(`${key}@${LANE_NAMES[lane]}`),
  };
  return { queued, controller };
}

const obj = (name: string, meta: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Thing",
  metadata: { name, namespace: "ns", generation: 1, ...meta },
});

describe("watches", () => {
  it("watchOwn queues adds, deletes and the updates that change spec or deletion, not status writes", () => {
    const inf = new FakeInformer("Thing");
    const { queued, controller } = recordingQueue();
    watchOwn(inf, controller);
    inf.set(obj("a"));
    inf.set({ ...obj("a"), status: { ready: true } });
    assert.deepEqual(queued, ["ns/a@Objects"], "a status write queues nothing");
    inf.set(obj("a", { generation: 2 }));
    inf.set(obj("a", { generation: 2, deletionTimestamp: "2026-01-01T00:00:00Z" }));
    inf.remove("ns", "a");
    assert.deepEqual(queued, ["ns/a@Objects", "ns/a@Objects", "ns/a@Objects", "ns/a@Objects"]);
  });

  it("watchOwn takes the controller's own test of a change that needs a pass", () => {
    const inf = new FakeInformer("Thing");
    const { queued, controller } = recordingQueue();
    watchOwn(inf, controller, (o, old) => o.metadata.labels?.x !== old.metadata.labels?.x);
    inf.set(obj("a"));
    inf.set(obj("a", { generation: 2 }));
    inf.set(obj("a", { generation: 2, labels: { x: "1" } }));
    assert.deepEqual(queued, ["ns/a@Objects", "ns/a@Objects"]);
  });

  it("watchChildren queues the owner a child's label names, in the children's lane unless told", () => {
    const pods = new FakeInformer("Pod");
    const jobs = new FakeInformer("Job");
    const { queued, controller } = recordingQueue();
    watchChildren([pods], controller, LABEL);
    watchChildren([jobs], controller, LABEL, Lane.Objects);
    pods.set(obj("p", { labels: { [LABEL]: "owner" } }));
    pods.set(obj("unlabelled"));
    pods.remove("ns", "p");
    jobs.set(obj("j", { labels: { [LABEL]: "other" } }));
    assert.deepEqual(queued, ["ns/owner@Children", "ns/owner@Children", "ns/other@Objects"]);
    assert.equal(ownerKey(obj("x", { labels: { [LABEL]: "o" }, namespace: undefined }), LABEL), undefined);
  });

  it("resyncChildren queues every owner the cached children name", () => {
    const pods = new FakeInformer("Pod", [
      obj("p1", { labels: { [LABEL]: "a" } }),
      obj("p2", { labels: { [LABEL]: "b" } }),
      obj("p3"),
    ]);
    const { queued, controller } = recordingQueue();
    resyncChildren([pods], controller, LABEL);
    assert.deepEqual(queued.sort(), ["ns/a@Objects", "ns/b@Objects"]);
  });

  it("controllersFor registers each reconciler's watches and resyncs them in the resync lane", () => {
    const seen: string[] = [];
    const reconciler = (name: string): WatchingReconciler => ({
      name,
      reconcile: () => Promise.resolve(),
      watches: {
        register: (c) => void seen.push(`register ${name} ${c.queue.length}`),
        resync: (c) => c.enqueue(`${name}-key`),
      },
    });
    const one = reconciler("one");
    const two = reconciler("two");
    const { controllers, controllerOf, resyncAll } = controllersFor([one, two], {
      metrics: new Metrics(false),
      log: silentLogger(),
    });
    assert.deepEqual(seen, ["register one 0", "register two 0"]);
    assert.equal(controllers.length, 2);
    assert.equal(controllerOf(two), controllers[1]);
    resyncAll();
    assert.equal(controllerOf(one).queue.length, 1);
    assert.equal(controllerOf(two).queue.length, 1);
  });
});
