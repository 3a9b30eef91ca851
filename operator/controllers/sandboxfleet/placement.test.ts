import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { place, placeAll, tenantOf, type PlacementPolicy, type SandboxView } from "./placement.ts";

const policy: PlacementPolicy = { maxPerSandbox: 2, cpu: 0.8, memory: 0.8, ownerlessPool: "shared" };
const sb = (
  name: string,
  workspaces: { key: string; ownerId?: string }[] = [],
  extra: Partial<SandboxView> = {},
): SandboxView => ({
  name,
  ready: true,
  draining: false,
  workspaces,
  ...extra,
});

describe("place", () => {
  const cases: [
    string,
    Parameters<typeof place>[0],
    SandboxView[],
    Partial<PlacementPolicy>,
    string | RegExp,
  ][] = [
    [
      "a preferred sandbox the rules allow: taken over the fuller shared one",
      { key: "w", prefer: "b" },
      [sb("a", [{ key: "x" }]), sb("b")],
      {},
      "b",
    ],
    [
      "a preferred sandbox of another owner: the owner's own",
      { key: "w", ownerId: "alice", prefer: "a" },
      [sb("a", [{ key: "x", ownerId: "bob" }]), sb("b", [{ key: "y", ownerId: "alice" }])],
      {},
      "b",
    ],
    [
      "a preferred empty sandbox while the owner has one: owners are never split",
      { key: "w", ownerId: "alice", prefer: "a" },
      [sb("a"), sb("b", [{ key: "y", ownerId: "alice" }])],
      {},
      "b",
    ],
    [
      "a preferred sandbox that is full: elsewhere",
      { key: "w", prefer: "a" },
      [sb("a", [{ key: "x" }, { key: "y" }]), sb("b")],
      {},
      "b",
    ],
    [
      "a preferred shared sandbox for a dedicated workspace: an empty one",
      { key: "w", prefer: "a" },
      [sb("a", [{ key: "x" }]), sb("b")],
      { ownerlessPool: "dedicated" },
      "b",
    ],
    [
      "owner joins its own sandbox",
      { key: "w", ownerId: "alice" },
      [sb("a"), sb("b", [{ key: "x", ownerId: "alice" }])],
      {},
      "b",
    ],
    [
      "new owner takes an empty sandbox",
      { key: "w", ownerId: "bob" },
      [sb("a", [{ key: "x", ownerId: "alice" }]), sb("b")],
      {},
      "b",
    ],
    [
      "owner waits when its sandbox is full, never split",
      { key: "w", ownerId: "alice" },
      [
        sb("a", [
          { key: "x", ownerId: "alice" },
          { key: "y", ownerId: "alice" },
        ]),
        sb("b"),
      ],
      {},
      /holds 2 workspaces/,
    ],
    [
      "owner waits while its sandbox is under pressure",
      { key: "w", ownerId: "alice" },
      [sb("a", [{ key: "x", ownerId: "alice" }], { load: { cpu: 0.9, memory: 0.1 } }), sb("b")],
      {},
      /under cpu\/memory pressure/,
    ],
    ["ownerless shares a shared sandbox", { key: "w" }, [sb("a"), sb("b", [{ key: "x" }])], {}, "b"],
    [
      "ownerless skips a shared sandbox whose memory is high",
      { key: "w" },
      [sb("a"), sb("b", [{ key: "x" }], { load: { cpu: 0.1, memory: 0.85 } })],
      {},
      "a",
    ],
    [
      "ownerless never joins an owner's sandbox",
      { key: "w" },
      [sb("a", [{ key: "x", ownerId: "alice" }])],
      {},
      /no sandbox with room/,
    ],
    [
      "dedicated ownerless takes an empty sandbox",
      { key: "w" },
      [sb("a", [{ key: "x" }]), sb("b")],
      { ownerlessPool: "dedicated" },
      "b",
    ],
    [
      "draining sandboxes take nothing",
      { key: "w", ownerId: "bob" },
      [sb("a", [], { draining: true })],
      {},
      /no empty sandbox/,
    ],
    [
      "unready sandboxes take nothing",
      { key: "w" },
      [sb("a", [], { ready: false })],
      {},
      /no sandbox with room/,
    ],
  ];
  for (const [name, ws, sandboxes, p, expected] of cases) {
    it(name, () => {
      const d = place(ws, sandboxes, { ...policy, ...p });
      if (typeof expected === "string") assert.deepEqual(d, { sandbox: expected });
      else {
        assert.ok("wait" in d, JSON.stringify(d));
        assert.match(d.wait, expected);
      }
    });
  }

  it("counts what a waiting burst needs: one sandbox per new owner, shared ones packed", () => {
    const plan = placeAll(
      [
        { key: "1", ownerId: "a" },
        { key: "2", ownerId: "a" },
        { key: "3", ownerId: "b" },
        { key: "4" },
        { key: "5" },
        { key: "6" },
      ],
      [],
      policy,
    );
    assert.equal(plan.placements.size, 0);
    assert.equal(plan.newSandboxesNeeded, 2 + Math.ceil(3 / 2));
  });
});

describe("placement properties", () => {
  const workspace = fc.record({
    key: fc.uuid(),
    ownerId: fc.option(fc.constantFrom("alice", "bob", "carol", "dave"), { nil: undefined }),
  });
  const sandbox = fc.record({
    ready: fc.boolean(),
    draining: fc.boolean(),
    load: fc.option(
      fc.record({
        cpu: fc.double({ min: 0, max: 1, noNaN: true }),
        memory: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      {
        nil: undefined,
      },
    ),
  });
  const scenario = fc.record({
    pending: fc.array(workspace, { maxLength: 60 }),
    sandboxes: fc.array(sandbox, { maxLength: 12 }),
    max: fc.integer({ min: 1, max: 8 }),
    pool: fc.constantFrom<"shared" | "dedicated">("shared", "dedicated"),
  });

  it("never exceeds capacity, never splits an owner, never places on closed sandboxes, places each at most once", () => {
    fc.assert(
      fc.property(scenario, ({ pending, sandboxes, max, pool }) => {
        const p: PlacementPolicy = { maxPerSandbox: max, cpu: 0.8, memory: 0.8, ownerlessPool: pool };
        const views = sandboxes.map((s, i) => ({ ...s, name: `s${i}`, workspaces: [] }));
        const plan = placeAll(pending, views, p);
        const count = new Map<string, number>();
        const ownerHome = new Map<string, string>();
        const tenants = new Map<string, Set<string>>();
        for (const ws of pending) {
          const target = plan.placements.get(ws.key);
          assert.ok(
            target === undefined ||
              !plan.waiting.has(ws.key) ||
              pending.filter((w) => w.key === ws.key).length > 1,
          );
          if (!target) continue;
          const s = views.find((v) => v.name === target)!;
          assert.ok(s.ready && !s.draining, "placed on a closed sandbox");
          assert.ok(
            !(s.load && (s.load.cpu >= 0.8 || s.load.memory >= 0.8)),
            "placed on a pressured sandbox",
          );
          count.set(target, (count.get(target) ?? 0) + 1);
          const tenant = ws.ownerId ? `owner:${ws.ownerId}` : "ownerless";
          tenants.set(target, (tenants.get(target) ?? new Set()).add(tenant));
          if (ws.ownerId) {
            const home = ownerHome.get(ws.ownerId);
            assert.ok(home === undefined || home === target, `owner ${ws.ownerId} split`);
            ownerHome.set(ws.ownerId, target);
          }
        }
        for (const [name, n] of count) {
          assert.ok(n <= max, `${name} holds ${n} > ${max}`);
          assert.equal(tenants.get(name)!.size, 1, `${name} mixes tenants`);
          if (pool === "dedicated" && tenants.get(name)!.has("ownerless"))
            assert.equal(n, 1, "dedicated sandbox shared");
        }
        assert.ok(plan.newSandboxesNeeded >= 0);
      }),
      { numRuns: 300 },
    );
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(scenario, ({ pending, sandboxes, max, pool }) => {
        const p: PlacementPolicy = { maxPerSandbox: max, cpu: 0.8, memory: 0.8, ownerlessPool: pool };
        const views = sandboxes.map((s, i) => ({ ...s, name: `s${i}`, workspaces: [] }));
        assert.deepEqual(placeAll(pending, views, p), placeAll(pending, views, p));
      }),
      { numRuns: 100 },
    );
  });

  it("derives tenancy from what is placed", () => {
    assert.deepEqual(tenantOf(sb("a")), { kind: "empty" });
    assert.deepEqual(tenantOf(sb("a", [{ key: "x", ownerId: "o" }])), { kind: "owner", ownerId: "o" });
    assert.deepEqual(tenantOf(sb("a", [{ key: "x" }])), { kind: "shared" });
    assert.deepEqual(tenantOf(sb("a", [{ key: "x" }], { dedicated: true })), { kind: "dedicated" });
  });
});
