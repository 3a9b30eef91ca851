import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { KubeObject } from "../../lib/kube/client.ts";
import { TypedInformer } from "../../lib/kube/typed.ts";
import { FakeInformer } from "../../test/harness/fakekube.ts";
import { AgentTally } from "./trust.tally.ts";

const agent = (
  namespace: string,
  name: string,
  options: { workspace?: string; deleting?: boolean; image?: unknown; env?: string } = {},
): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: {
    name,
    namespace,
    uid: `uid-${namespace}-${name}`,
    ...(options.deleting ? { deletionTimestamp: "2026-12-01T00:00:00Z", finalizers: ["x"] } : {}),
  },
  spec: {
    image: options.image ?? "registry.example/agent:1",
    ...(options.workspace ? { workspaceRef: { name: options.workspace } } : {}),
    ...(options.env ? { env: [{ name: "REVISION", value: options.env }] } : {}),
  },
});

function bed(objects: KubeObject[] = []) {
  const raw = new FakeInformer("AgentRuntime", objects);
  const typed = new TypedInformer("AgentRuntime", raw, () => undefined);
  const tally = new AgentTally(typed);
  const woken: string[] = [];
  tally.onChange((ns) => woken.push(ns));
  return { raw, typed, tally, woken };
}

describe("the trust controller's tally of AgentRuntimes", () => {
  it("counts a namespace's AgentRuntimes and the Workspaces the live ones work in, from the cache at start and its events after", () => {
    const { raw, tally } = bed([agent("a", "one", { workspace: "app" })]);
    raw.set(agent("a", "two", { workspace: "app" }));
    raw.set(agent("a", "three", { workspace: "docs" }));
    raw.set(agent("a", "four"));
    raw.set(agent("b", "one", { workspace: "other" }));
    assert.deepEqual(tally.count("a"), { agents: 4, live: 4 });
    assert.deepEqual(tally.workspaces("a").sort(), ["app", "docs"]);
    assert.deepEqual(tally.workspaces("b"), ["other"]);

    raw.set(agent("a", "three", { workspace: "docs", deleting: true }));
    assert.deepEqual(tally.count("a"), { agents: 4, live: 3 });
    assert.deepEqual(tally.workspaces("a"), ["app"], "a deleting AgentRuntime needs no token");
    assert.equal(tally.liveAgent("a", "three"), false);
    assert.equal(tally.liveAgent("a", "four"), true);

    raw.remove("a", "one");
    assert.deepEqual(tally.workspaces("a"), ["app"], "another AgentRuntime still works in it");
    raw.remove("a", "two");
    assert.deepEqual(tally.workspaces("a"), []);
    for (const name of ["three", "four"]) raw.remove("a", name);
    assert.deepEqual(tally.count("a"), { agents: 0, live: 0 });
  });

  it("wakes the controller when an AgentRuntime comes, goes or changes its Workspace, not for other spec changes", () => {
    const { raw, woken } = bed();
    raw.set(agent("a", "one"));
    assert.deepEqual(woken, ["a"], "came");
    raw.set(agent("a", "one", { env: "2" }));
    raw.set(agent("a", "one", { env: "3" }));
    assert.deepEqual(woken, ["a"], "env changes: not woken");
    raw.set(agent("a", "one", { env: "3", workspace: "app" }));
    raw.set(agent("a", "one", { env: "3", workspace: "app", deleting: true }));
    raw.remove("a", "one");
    assert.deepEqual(woken, ["a", "a", "a", "a"]);
  });

  it("stops counting an AgentRuntime whose new version does not parse", () => {
    const { raw, tally, woken } = bed();
    raw.set(agent("a", "one", { workspace: "app" }));
    raw.set(agent("a", "one", { workspace: "app", image: 42 }));
    assert.deepEqual(tally.count("a"), { agents: 0, live: 0 });
    assert.deepEqual(tally.workspaces("a"), []);
    assert.deepEqual(woken, ["a", "a"]);
  });

  it("always equals a count over the cache, whatever the events (property)", () => {
    const op = fc.record({
      ns: fc.constantFrom("a", "b"),
      name: fc.constantFrom("x", "y", "z"),
      what: fc.constantFrom("set", "remove"),
      workspace: fc.option(fc.constantFrom("app", "docs"), { nil: undefined }),
      deleting: fc.boolean(),
      invalid: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { raw, typed, tally } = bed();
        for (const o of ops) {
          if (o.what === "remove") raw.remove(o.ns, o.name);
          else
            raw.set(
              agent(o.ns, o.name, {
                ...(o.workspace ? { workspace: o.workspace } : {}),
                deleting: o.deleting,
                ...(o.invalid ? { image: 42 } : {}),
              }),
            );
        }
        for (const ns of ["a", "b"]) {
          const agents = typed.list(ns);
          const live = agents.filter((a) => !a.metadata.deletionTimestamp);
          assert.deepEqual(tally.count(ns), { agents: agents.length, live: live.length });
          const workspaces = new Set(live.flatMap((a) => a.spec.workspaceRef?.name ?? []));
          assert.deepEqual(tally.workspaces(ns).sort(), [...workspaces].sort());
          for (const name of ["x", "y", "z"])
            assert.equal(
              tally.liveAgent(ns, name),
              live.some((a) => a.metadata.name === name),
            );
        }
      }),
    );
  });
});
