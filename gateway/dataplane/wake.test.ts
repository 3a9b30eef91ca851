import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATION_IDLE_SUSPENDED, type Workspace } from "../../api/v1alpha1/index.ts";
import { ApiError, type KubeClient, type KubeObject } from "../../lib/kube/client.ts";
import { wake, wakes } from "./wake.ts";

type Ws = Workspace & KubeObject;

function ws(o: { suspended?: boolean; idle?: boolean; reason?: string; status?: "True" | "False" } = {}): Ws {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: {
      name: "w",
      namespace: "team",
      generation: 1,
      ...(o.idle ? { annotations: { [ANNOTATION_IDLE_SUSPENDED]: "2026-12-01T12:00:00Z" } } : {}),
    },
    spec: { fleetRef: { name: "f" }, suspended: o.suspended ?? false, retain: false },
    ...(o.reason
      ? {
          status: {
            phase: o.reason === "Placed" ? "Ready" : "Suspended",
            ...(o.reason === "Placed" ? { sandboxPod: "f-1" } : {}),
            conditions: [
              {
                type: "Ready",
                status: o.status ?? "True",
                reason: o.reason,
                message: o.reason,
                observedGeneration: 1,
                lastTransitionTime: "2026-12-01T12:00:00Z",
              },
            ],
          },
        }
      : {}),
  };
}

/** A client whose reads walk through `states` (the last one repeats); patches are recorded. */
function kube(states: Ws[], patches: unknown[] = []): KubeClient {
  let i = 0;
  return {
    mergePatch: (_t: unknown, patch: unknown) => {
      patches.push(patch);
      return Promise.resolve(states[Math.min(i++, states.length - 1)]);
    },
    get: () => Promise.resolve(states[Math.min(i++, states.length - 1)]),
  } as unknown as KubeClient;
}

describe("wakes", () => {
  const cases: [string, Ws, boolean][] = [
    ["suspended for idleness", ws({ idle: true, reason: "IdleSuspended" }), true],
    ["woken, its status not caught up", ws({ reason: "IdleSuspended" }), true],
    ["restoring its files", ws({ reason: "Restoring", status: "False" }), true],
    ["suspended by its spec (even if it was idle too)", ws({ suspended: true, idle: true }), false],
    ["ready", ws({ reason: "Placed" }), false],
    ["waiting for capacity", ws({ reason: "WaitingForCapacity", status: "False" }), false],
  ];
  for (const [name, w, expected] of cases) it(name, () => assert.equal(wakes(w), expected));
});

describe("wake", () => {
  it("removes the idle annotation and waits until the workspace is placed and ready", async () => {
    const patches: unknown[] = [];
    const woken = await wake(
      kube(
        [
          ws({ reason: "IdleSuspended" }),
          ws({ reason: "Restoring", status: "False" }),
          ws({ reason: "Placed" }),
        ],
        patches,
      ),
      ws({ idle: true, reason: "IdleSuspended" }),
      60_000,
    );
    assert.equal(woken.status?.sandboxPod, "f-1");
    assert.deepEqual(patches, [{ metadata: { annotations: { [ANNOTATION_IDLE_SUSPENDED]: null } } }]);
  });

  it("answers 503 with Retry-After past the bound", async () => {
    let t = 0;
    await assert.rejects(
      wake(
        kube([ws({ reason: "IdleSuspended" })]),
        ws({ idle: true, reason: "IdleSuspended" }),
        1000,
        () => (t += 600),
      ),
      (err: { status?: number; init?: { headers?: Record<string, string>; detail?: string } }) => {
        assert.equal(err.status, 503);
        assert.equal(err.init?.headers?.["retry-after"], "5");
        assert.match(err.init?.detail ?? "", /suspended for idleness and is waking up/);
        return true;
      },
    );
  });

  it("says a workspace that was not asleep is being restored", async () => {
    let t = 0;
    const restoring = ws({ reason: "Restoring", status: "False" });
    await assert.rejects(
      wake(kube([restoring]), restoring, 1000, () => (t += 600)),
      (err: Error) => /is being restored \(phase Suspended: Restoring\)/.test(err.message),
    );
  });

  it("stops waiting when the spec suspends it meanwhile (the caller answers 409)", async () => {
    const w = await wake(
      kube([ws({ suspended: true })]),
      ws({ reason: "Restoring", status: "False" }),
      60_000,
    );
    assert.equal(w.spec.suspended, true);
  });

  it("answers 404 when the workspace goes", async () => {
    const missing = {
      mergePatch: () => Promise.reject(new ApiError(404, "NotFound", "not found")),
    } as unknown as KubeClient;
    await assert.rejects(
      wake(missing, ws({ idle: true }), 1000),
      (err: { status?: number }) => err.status === 404,
    );
  });
});
