import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATION_IDLE_SUSPENDED, isIdleSuspended, type Workspace } from "../../api/v1alpha1/index.ts";
import type { WorkspaceInfo } from "../../contracts/sandbox.ts";
import { expiryOf, expiryVerdict, idleVerdict, isSuspended } from "./workspace.lifetime.ts";

const NOW = new Date("2026-12-01T12:00:00Z");

function workspace(spec: Partial<Workspace["spec"]> = {}, annotations?: Record<string, string>): Workspace {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "Workspace",
    metadata: {
      name: "ws",
      namespace: "team",
      creationTimestamp: "2026-12-01T11:00:00Z",
      ...(annotations ? { annotations } : {}),
    },
    spec: { fleetRef: { name: "fleet" }, suspended: false, retain: false, ...spec },
  };
}

function info(lastActivityTime: string | undefined, phase?: "restoring" | "ready" | "failed"): WorkspaceInfo {
  return {
    id: "team.ws",
    ownerId: null,
    createdAt: "2026-12-01T11:00:00Z",
    ...(lastActivityTime ? { lastActivityTime } : {}),
    ...(phase ? { durability: { phase, durable: phase === "ready", dirty: false } } : {}),
  };
}

describe("idleVerdict", () => {
  const cases: [string, Partial<Workspace["spec"]>, WorkspaceInfo | undefined, boolean, boolean, number?][] =
    [
      ["no idleTimeout: never idle", {}, info("2026-12-01T00:00:00Z", "ready"), true, false],
      [
        "no store: never idle (it would lose the files)",
        { idleTimeout: "5m" },
        info("2026-12-01T00:00:00Z"),
        false,
        false,
      ],
      ["nothing known of it: not idle", { idleTimeout: "5m" }, undefined, true, false],
      ["no activity time reported: not idle", { idleTimeout: "5m" }, info(undefined, "ready"), true, false],
      ["restoring: not idle", { idleTimeout: "5m" }, info("2026-12-01T00:00:00Z", "restoring"), true, false],
      [
        "a failed restore: not idle",
        { idleTimeout: "5m" },
        info("2026-12-01T00:00:00Z", "failed"),
        true,
        false,
      ],
      [
        "active 1m ago: looks again in 4m",
        { idleTimeout: "5m" },
        info("2026-12-01T11:59:00Z", "ready"),
        true,
        false,
        240_000,
      ],
      ["exactly the timeout: idle", { idleTimeout: "5m" }, info("2026-12-01T11:55:00Z", "ready"), true, true],
      ["long quiet: idle", { idleTimeout: "30s" }, info("2026-12-01T11:00:00Z", "ready"), true, true],
      [
        "a command running reports now: not idle",
        { idleTimeout: "1s" },
        info(NOW.toISOString(), "ready"),
        true,
        false,
        1000,
      ],
    ];
  for (const [name, spec, i, stored, idle, recheck] of cases) {
    it(name, () => {
      const v = idleVerdict(workspace(spec), i, stored, NOW);
      assert.equal(v.idle, idle);
      if (v.idle)
        assert.match(v.message, new RegExp(`since ${i!.lastActivityTime}.*idleTimeout ${spec.idleTimeout}`));
      else assert.equal(v.recheckInMs, recheck);
    });
  }
});

describe("idle suspension marks", () => {
  it("the annotation suspends like spec.suspended, whatever its value", () => {
    assert.equal(isIdleSuspended(workspace()), false);
    assert.equal(isSuspended(workspace()), false);
    assert.equal(isSuspended(workspace({ suspended: true })), true);
    const idle = workspace({}, { [ANNOTATION_IDLE_SUSPENDED]: "" });
    assert.equal(isIdleSuspended(idle), true);
    assert.equal(isSuspended(idle), true);
  });
});

describe("expiry", () => {
  const cases: [string, Partial<Workspace["spec"]>, string | undefined, boolean, number?][] = [
    ["neither field: never", {}, undefined, false],
    ["ttl after creation", { ttlSecondsAfterCreation: 7200 }, "2026-12-01T13:00:00.000Z", false, 3_600_000],
    ["ttl passed", { ttlSecondsAfterCreation: 3600 }, "2026-12-01T12:00:00.000Z", true],
    ["expireAt ahead", { expireAt: "2026-12-01T12:00:30Z" }, "2026-12-01T12:00:30.000Z", false, 30_000],
    ["expireAt passed", { expireAt: "2026-11-30T00:00:00Z" }, "2026-11-30T00:00:00.000Z", true],
    [
      "both: the earlier wins",
      { ttlSecondsAfterCreation: 60, expireAt: "2027-01-01T00:00:00Z" },
      "2026-12-01T11:01:00.000Z",
      true,
    ],
  ];
  for (const [name, spec, at, expired, recheck] of cases) {
    it(name, () => {
      const ws = workspace(spec);
      assert.equal(expiryOf(ws)?.toISOString(), at);
      const v = expiryVerdict(ws, NOW);
      assert.equal(v.expired, expired);
      if (v.expired) assert.match(v.message, /deleting the workspace and its stored files/);
      else assert.equal(v.recheckInMs, recheck);
    });
  }

  it("says a retained workspace's files stay", () => {
    const v = expiryVerdict(workspace({ ttlSecondsAfterCreation: 1, retain: true }), NOW);
    assert.ok(v.expired);
    assert.match(v.message, /stored files are retained/);
  });
});
