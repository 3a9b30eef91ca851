import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../lib/kube/client.ts";
import { Metrics } from "../../lib/kube/metrics.ts";
import { TypedInformer } from "../../lib/kube/typed.ts";
import { FakeInformer } from "../../test/harness/fakekube.ts";
import { silentLogger } from "../../lib/log.ts";
import { EXPIRY_RECHECK_MAX_MS, WorkspaceExpiryReconciler } from "./workspace.expiry.ts";

const NOW = new Date("2026-12-01T12:00:00Z");

function setup(spec: Record<string, unknown>, extra: Partial<KubeObject["metadata"]> = {}) {
  const ws = {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: {
      name: "ws",
      namespace: "team",
      uid: "u1",
      creationTimestamp: "2026-12-01T11:00:00Z",
      ...extra,
    },
    spec: { fleetRef: { name: "fleet" }, suspended: false, retain: false, ...spec },
  } satisfies KubeObject;
  const deleted: { uid?: string }[] = [];
  const events: string[] = [];
  const metrics = new Metrics(false);
  const informer = new TypedInformer("Workspace", new FakeInformer("Workspace", [ws]), () => undefined);
  const reconciler = new WorkspaceExpiryReconciler({
    client: {
      delete: (_o, options) => {
        deleted.push(options ?? {});
        return Promise.resolve(true);
      },
    },
    informers: { workspaces: informer },
    recorder: { event: (_o, type, reason, message) => void events.push(`${type} ${reason}: ${message}`) },
    metrics,
    log: silentLogger(),
    now: () => NOW,
  });
  return { reconciler, deleted, events, metrics };
}

describe("WorkspaceExpiryReconciler", () => {
  it("deletes an expired workspace (this incarnation only) with an Expired Event", async () => {
    const { reconciler, deleted, events, metrics } = setup({ ttlSecondsAfterCreation: 60 });
    assert.equal(await reconciler.reconcile("team/ws"), undefined);
    assert.deepEqual(deleted, [{ uid: "u1" }]);
    const counted = await metrics.registry.getSingleMetric("agentry_writes_total")?.get();
    assert.deepEqual(
      counted?.values.map((v) => [v.labels, v.value]),
      [[{ controller: "workspace-expiry", kind: "Workspace", verb: "delete" }, 1]],
      "the delete is counted in agentry_writes_total",
    );
    assert.equal(events.length, 1);
    assert.match(
      events[0]!,
      /^Normal Expired: expired at 2026-12-01T11:01:00.000Z \(spec.ttlSecondsAfterCreation 60\)/,
    );
  });

  it("looks again when the workspace is due", async () => {
    const { reconciler, deleted } = setup({ expireAt: "2026-12-01T12:00:05Z" });
    assert.deepEqual(await reconciler.reconcile("team/ws"), { requeueAfterMs: 5000 });
    assert.deepEqual(deleted, []);
  });

  it("caps the wait for a far expiry", async () => {
    const { reconciler } = setup({ ttlSecondsAfterCreation: 86_400 * 30 });
    assert.deepEqual(await reconciler.reconcile("team/ws"), { requeueAfterMs: EXPIRY_RECHECK_MAX_MS });
  });

  it("leaves alone a workspace without expiry, one being deleted, and one that is gone", async () => {
    const plain = setup({});
    assert.equal(await plain.reconciler.reconcile("team/ws"), undefined);
    const deleting = setup({ ttlSecondsAfterCreation: 1 }, { deletionTimestamp: "2026-12-01T11:59:00Z" });
    assert.equal(await deleting.reconciler.reconcile("team/ws"), undefined);
    assert.equal(await deleting.reconciler.reconcile("team/other"), undefined);
    assert.deepEqual([...plain.deleted, ...deleting.deleted], []);
  });
});
