import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import { z } from "zod";
import { repoRoot } from "../../test/harness/paths.ts";
import { crdFor, jsonSchemaOf, structural, undocumented } from "./crd.ts";
import { KINDS, SCHEDULE_PATTERN, specSchemas } from "./index.ts";

type Schema = Record<string, unknown>;

function walk(node: Schema, visit: (n: Schema, path: string) => void, path = ""): void {
  visit(node, path);
  for (const [name, child] of Object.entries((node.properties as Record<string, Schema>) ?? {})) {
    walk(child, visit, `${path}.${name}`);
  }
  if (node.items) walk(node.items as Schema, visit, `${path}[]`);
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    walk(node.additionalProperties as Schema, visit, `${path}[*]`);
  }
}

const rootSchema = (crd: Schema) =>
  (crd as { spec: { versions: { schema: { openAPIV3Schema: Schema } }[] } }).spec.versions[0]!.schema
    .openAPIV3Schema;

describe("CRD generation", () => {
  for (const def of KINDS) {
    it(`${def.kind}: structural, documented, namespaced, in category agentry`, () => {
      const crd = crdFor(def);
      const root = rootSchema(crd);
      walk(root, (node, path) => {
        assert.ok(
          !("additionalProperties" in node && node.additionalProperties === false),
          `${path}: closed object`,
        );
        if (node["x-kubernetes-int-or-string"]) return;
        assert.ok(!("anyOf" in node) && !("oneOf" in node), `${path}: union in a structural schema`);
        if (path !== "" && path !== ".metadata") assert.equal(typeof node.type, "string", `${path}: type`);
        assert.notEqual(node.maximum, Number.MAX_SAFE_INTEGER, `${path}: zod's safe-int bound leaked`);
      });
      assert.deepEqual(
        undocumented(root).filter((p) => p !== ".metadata"),
        [],
      );
      const spec = (crd as { spec: Schema }).spec;
      assert.equal(spec.scope, "Namespaced");
      assert.deepEqual((spec.names as Schema).categories, ["agentry"]);
    });
  }

  it("refuses unions a structural schema cannot hold", () => {
    assert.throws(
      () => structural(jsonSchemaOf(z.object({ a: z.union([z.string(), z.boolean()]) }))),
      /spec\.a: anyOf/,
    );
  });

  it("keeps int-or-string quantities as x-kubernetes-int-or-string", () => {
    const fleet = rootSchema(crdFor(KINDS[2]));
    const limits = (
      (((fleet.properties as Schema).spec as Schema).properties as Record<string, Schema>).template!
        .properties as Record<string, Schema>
    ).resources!.properties as Record<string, Schema>;
    const quantity = limits.limits!.additionalProperties as Schema;
    assert.equal(quantity["x-kubernetes-int-or-string"], true);
    assert.deepEqual(quantity.anyOf, [{ type: "integer" }, { type: "string" }]);
  });

  it("committed crds/ match the schemas (npm run gen)", async () => {
    for (const def of KINDS) {
      const file = await readFile(join(repoRoot, "crds", `agentry.dev_${def.plural}.yaml`), "utf8");
      assert.deepEqual(yaml.load(file), crdFor(def), `${def.plural}: run npm run gen`);
    }
  });
});

describe("schemas", () => {
  it("fill in defaults", () => {
    const fleet = specSchemas.SandboxFleet.parse({ template: { image: "x:1" } });
    assert.equal(fleet.minReplicas, 1);
    assert.equal(fleet.maxReplicas, 10);
    assert.equal(fleet.warmEmpty, 1);
    assert.equal(fleet.maxWorkspacesPerSandbox, 32);
    assert.deepEqual(fleet.pressure, { cpu: 0.8, memory: 0.8 });
    assert.equal(fleet.ownerlessPool, "shared");
    assert.equal(fleet.template.port, 8080);
    assert.equal(specSchemas.AgentRuntime.parse({ image: "x:1" }).port, 8080);
    const pipeline = specSchemas.Pipeline.parse({ steps: [{ name: "a", image: "x:1" }] });
    assert.equal(pipeline.schedule, "");
    assert.equal(pipeline.concurrencyPolicy, "Forbid");
  });

  const schedules: [string, boolean][] = [
    ["", true],
    ["@once", true],
    ["@daily", true],
    ["@every 1h30m", true],
    ["0 2 * * *", true],
    ["*/15 9-17 * * MON-FRI", true],
    ["0 0 1 1 *", true],
    ["* * *", false],
    ["every day", false],
    ["0 2 * * * *", false],
    ["@sometimes", false],
    ["0 2 * * *; rm -rf /", false],
  ];
  for (const [schedule, ok] of schedules) {
    it(`schedule ${JSON.stringify(schedule)} is ${ok ? "accepted" : "rejected"} by the CEL-side pattern`, () => {
      assert.equal(new RegExp(SCHEDULE_PATTERN).test(schedule), ok);
    });
  }

  it("accept every example (the gateway validates with the same schemas)", async () => {
    const dir = join(repoRoot, "examples");
    const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(".yaml"));
    let count = 0;
    for (const file of files) {
      for (const doc of yaml.loadAll(await readFile(join(dir, file), "utf8")) as Schema[]) {
        const def = KINDS.find((k) => k.kind === doc.kind);
        if (!def) continue;
        const result = def.object.safeParse(doc);
        assert.ok(result.success, `${file} ${String(doc.kind)}: ${result.error?.message}`);
        count++;
      }
    }
    assert.ok(count >= 13, `parsed ${count} agentry objects`);
  });

  it("reject names that would not make DNS-safe children", () => {
    const [ar] = KINDS;
    const base = { apiVersion: "agentry.dev/v1alpha1", kind: "AgentRuntime", spec: { image: "x:1" } };
    assert.equal(ar.object.safeParse({ ...base, metadata: { name: "ok-name" } }).success, true);
    for (const name of ["a".repeat(64), "Upper", "1starts-with-digit", "has.dot", "trailing-"]) {
      assert.equal(ar.object.safeParse({ ...base, metadata: { name } }).success, false, name);
    }
  });
});

describe("container image references", () => {
  const accepted = [
    "x:1",
    "busybox",
    "registry.example:5000/team/agent:1.4.2",
    "ghcr.io/acme/agent@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "r.example/a:v1.2_rc-3",
  ];
  const refused = [
    "a b",
    "alpine;rm",
    "r.example/a:$(id)",
    "r.example/`id`:1",
    "a:1|sh",
    "a:1&&id",
    "a:1\nid",
    "-a:1",
    "'a'",
  ];
  for (const image of accepted)
    it(`accepts ${image}`, () => assert.ok(specSchemas.AgentRuntime.safeParse({ image }).success));
  for (const image of refused)
    it(`refuses ${JSON.stringify(image)}`, () =>
      assert.ok(!specSchemas.AgentRuntime.safeParse({ image }).success));
});
