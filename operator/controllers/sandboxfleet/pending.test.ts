import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Workspace } from "../../../api/v1alpha1/index.ts";
import type { KubeObject } from "../../../lib/kube/client.ts";
import { parseObject } from "../../../lib/kube/typed.ts";
import { PENDING_TTL_MS, PendingWrites } from "./pending.ts";

const raw = (resourceVersion: string, status: Record<string, unknown> = {}, uid = "u1"): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "Workspace",
  metadata: { name: "ws", namespace: "team", uid, resourceVersion },
  spec: { fleetRef: { name: "pool" } },
  status,
});
const cached = (o: KubeObject): Workspace => {
  const parsed = parseObject("Workspace", o);
  assert.ok(parsed.ok);
  return parsed.value;
};
const placed = { phase: "Ready", sandboxPod: "pod-1" };

describe("PendingWrites", () => {
  it("reads a write's answer instead of the cache until the cache shows that version or a later one", () => {
    const pending = new PendingWrites();
    const before = cached(raw("10"));
    assert.equal(pending.view(before, 0), before, "nothing written: the cache");
    const ours = pending.wrote(before, raw("12", placed), 0);
    assert.ok(Object.isFrozen(ours) && Object.isFrozen(ours.status));
    assert.equal(ours.spec.suspended, false, "parsed with the schema's defaults, like the cache");
    assert.equal(pending.view(before, 1), ours);
    assert.equal(
      pending.view(cached(raw("11")), 2),
      ours,
      "an older version (another writer's) is not ours yet",
    );
    const caughtUp = cached(raw("12", placed));
    assert.equal(pending.view(caughtUp, 3), caughtUp);
    assert.equal(pending.size, 0, "forgotten once caught up");
  });

  it("lets a later version in the cache win", () => {
    const pending = new PendingWrites();
    pending.wrote(cached(raw("10")), raw("12", placed), 0);
    const later = cached(raw("15", { phase: "Suspended" }));
    assert.equal(pending.view(later, 1), later);
  });

  it("forgets an answer about an earlier object of the same name, or kept past its bound", () => {
    const pending = new PendingWrites();
    pending.wrote(cached(raw("10")), raw("12", placed), 0);
    const recreated = cached(raw("3", {}, "u2"));
    assert.equal(pending.view(recreated, 1), recreated);
    pending.wrote(cached(raw("10")), raw("12", placed), 0);
    const stale = cached(raw("10"));
    assert.equal(pending.view(stale, PENDING_TTL_MS + 1), stale);
    pending.wrote(cached(raw("10")), raw("12", placed), 0);
    pending.prune(PENDING_TTL_MS + 1);
    assert.equal(pending.size, 0);
  });

  it("without ordered versions, counts any change from the version it wrote over as caught up", () => {
    const pending = new PendingWrites();
    const ours = pending.wrote(cached(raw("a")), raw("c", placed), 0);
    assert.equal(pending.view(cached(raw("a")), 1), ours);
    const next = cached(raw("b"));
    assert.equal(pending.view(next, 2), next);
  });

  it("keeps the version it first wrote over across several writes", () => {
    const pending = new PendingWrites();
    const first = pending.wrote(cached(raw("a")), raw("x", { phase: "Pending" }), 0);
    const second = pending.wrote(first, raw("y", placed), 0);
    assert.equal(pending.view(cached(raw("a")), 1), second);
    assert.equal(pending.view(cached(raw("y", placed)), 2).metadata.resourceVersion, "y");
  });
});
