import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AgentRuntime } from "../../api/v1alpha1/index.ts";
import { FakeInformer } from "../../test/harness/fakekube.ts";
import type { KubeObject } from "./client.ts";
import { TypedInformer } from "./typed.ts";

const agent = (name: string, spec: Record<string, unknown>, resourceVersion = "1"): KubeObject => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name, namespace: "team", uid: `uid-${name}`, resourceVersion },
  spec,
});

function setup() {
  const raw = new FakeInformer("AgentRuntime");
  const reported: string[] = [];
  const typed = new TypedInformer("AgentRuntime", raw, (o, problem) =>
    reported.push(`${o.metadata.name}@${o.metadata.resourceVersion}: ${problem}`),
  );
  return { raw, typed, reported };
}

describe("TypedInformer", () => {
  it("hands out objects parsed by the kind's schema, with defaults, frozen", () => {
    const { raw, typed } = setup();
    raw.set(agent("a", { image: "registry.example/agent:1" }));
    const a = typed.get("team", "a")!;
    assert.equal(a.spec.port, 8080, "the schema's default");
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.spec) && Object.isFrozen(a.metadata));
    assert.throws(() => {
      (a.spec as { port: number }).port = 1;
    }, TypeError);
    assert.equal(typed.get("team", "a"), a, "parsed once per version");
  });

  it("keeps an object that does not parse out of get, list and handlers, and reports it once per version", () => {
    const { raw, typed, reported } = setup();
    const seen: string[] = [];
    typed.on("add", (o: AgentRuntime) => seen.push(`add ${o.metadata.name}`));
    typed.on("update", (o: AgentRuntime) => seen.push(`update ${o.metadata.name} ${o.spec.port}`));
    raw.set(agent("good", { image: "registry.example/agent:1" }));
    raw.set(agent("bad", { image: "registry.example/agent:1", port: 70_000 }));
    assert.deepEqual(
      typed.list().map((o) => o.metadata.name),
      ["good"],
    );
    assert.equal(typed.get("team", "bad"), undefined);
    assert.equal(typed.exists("team", "bad"), true);
    assert.match(typed.invalid("team", "bad") ?? "", /spec\.port/);
    assert.equal(typed.invalid("team", "good"), undefined);
    typed.get("team", "bad");
    assert.equal(reported.length, 1, reported.join("\n"));
    assert.deepEqual(seen, ["add good"]);

    // Fixed: handed out again, and its handlers hear of it.
    raw.set(agent("bad", { image: "registry.example/agent:1", port: 9000 }, "2"));
    assert.equal(typed.get("team", "bad")?.spec.port, 9000);
    assert.deepEqual(seen, ["add good", "update bad 9000"]);
  });

  it("lists the objects that do not parse from its own record, per namespace, as the cache changes", () => {
    const { raw, typed } = setup();
    const elsewhere = (o: KubeObject): KubeObject => ({
      ...o,
      metadata: { ...o.metadata, namespace: "other" },
    });
    raw.set(agent("good", { image: "registry.example/agent:1" }));
    raw.set(agent("bad", { image: "registry.example/agent:1", port: 70_000 }));
    raw.set(elsewhere(agent("bad", { port: 1 })));
    raw.list = () => assert.fail("listInvalid reads the whole cache");
    const names = (ns?: string) =>
      typed.listInvalid(ns).map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    assert.deepEqual(names("team"), ["team/bad"]);
    assert.deepEqual(names().sort(), ["other/bad", "team/bad"]);
    raw.set(agent("good", { image: 7 }, "2"));
    assert.deepEqual(names("team").sort(), ["team/bad", "team/good"], "went bad");
    raw.set(agent("bad", { image: "registry.example/agent:1" }, "2"));
    assert.deepEqual(names("team"), ["team/good"], "fixed");
    raw.remove("team", "good");
    assert.deepEqual(names("team"), [], "deleted");
    assert.deepEqual(names("other"), ["other/bad"]);
  });

  it("hands out the delete of an object that stopped parsing as its last version that did", async () => {
    const { raw, typed } = setup();
    const deleted: string[] = [];
    typed.on("delete", (o: AgentRuntime) => deleted.push(`${o.metadata.name}@${o.metadata.resourceVersion}`));
    raw.set(agent("a", { image: "registry.example/agent:1" }));
    raw.set(agent("a", { image: 7 }, "2"));
    raw.set(agent("a", { image: 8 }, "3"));
    raw.set(agent("never", { image: 7 }));
    raw.remove("team", "a");
    raw.remove("team", "never");
    assert.deepEqual(
      deleted,
      ["a@1"],
      "a delete for the one that once parsed, none for the one that never did",
    );
    await Promise.resolve();
    raw.set(agent("a", { image: 9 }, "4"));
    raw.remove("team", "a");
    assert.deepEqual(deleted, ["a@1"], "a new object of that name that never parsed: no delete");
  });

  it("parses a new version's spec only when the spec or the uid differs", () => {
    const { raw, typed } = setup();
    typed.on("update", () => undefined);
    const version = (rv: string, generation: number, spec: Record<string, unknown>, uid = "uid-a") => {
      const o = agent("a", spec, rv);
      o.metadata.generation = generation;
      o.metadata.uid = uid;
      o["status"] = { observedGeneration: generation, rv };
      return o;
    };
    raw.set(version("1", 1, { image: "registry.example/agent:1" }));
    const first = typed.get("team", "a")!;
    // A status write: the same generation, the spec parsed before is handed out again.
    raw.set(version("2", 1, { image: "registry.example/agent:1" }));
    const second = typed.get("team", "a")!;
    assert.equal(second.spec, first.spec);
    assert.deepEqual(second.status, { observedGeneration: 1, rv: "2" }, "the new version's status");
    assert.equal(second.metadata.resourceVersion, "2");
    assert.ok(Object.isFrozen(second) && Object.isFrozen(second.metadata));
    // A spec change: parsed again.
    raw.set(version("3", 2, { image: "registry.example/agent:2", port: 9000 }));
    const third = typed.get("team", "a")!;
    assert.notEqual(third.spec, first.spec);
    assert.deepEqual([third.spec.image, third.spec.port], ["registry.example/agent:2", 9000]);
    // A spec change under the same generation (no apiserver does that; a fake might): parsed again.
    raw.set(version("4", 2, { image: "registry.example/agent:2", port: 9001 }));
    assert.equal(typed.get("team", "a")!.spec.port, 9001);
    // Deleted and made again under the same name (a new uid), the same spec: parsed again.
    const before = typed.get("team", "a")!;
    raw.set(version("5", 2, { image: "registry.example/agent:2", port: 9001 }, "uid-other"));
    assert.notEqual(typed.get("team", "a")!.spec, before.spec);
    assert.equal(typed.get("team", "a")!.metadata.uid, "uid-other");
  });

  it("parses a status write's version again when the version before it did not parse", () => {
    const { raw, typed } = setup();
    typed.on("update", () => undefined);
    const bad = agent("a", { image: "registry.example/agent:1", port: 70_000 }, "1");
    bad.metadata.generation = 1;
    raw.set(bad);
    assert.equal(typed.get("team", "a"), undefined);
    const again = agent("a", { image: "registry.example/agent:1", port: 70_000 }, "2");
    again.metadata.generation = 1;
    raw.set(again);
    assert.equal(typed.get("team", "a"), undefined);
    assert.match(typed.invalid("team", "a") ?? "", /spec\.port/);
  });
});
