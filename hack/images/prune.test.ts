import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { closure, importedPackages, packageOf, resolveIn, type LockPackages } from "./prune.ts";
import { repoRoot } from "../../test/harness/paths.ts";

const lock: LockPackages = {
  "": { dependencies: { a: "1", b: "1" } },
  "node_modules/a": { dependencies: { c: "1", "@s/d": "1" }, optionalDependencies: { "not-here": "1" } },
  "node_modules/b": {
    dependencies: { c: "2" },
    peerDependencies: { e: "1", f: "1" },
    peerDependenciesMeta: { f: { optional: true } },
  },
  "node_modules/b/node_modules/c": { version: "2.0.0" },
  "node_modules/c": { version: "1.0.0" },
  "node_modules/@s/d": { dependencies: { c: "1" } },
  "node_modules/e": {},
  "node_modules/unused": { dependencies: { c: "1" } },
};

describe("image pruning", () => {
  it("names the package of an import specifier", () => {
    assert.equal(packageOf("zod"), "zod");
    assert.equal(packageOf("zod/v4"), "zod");
    assert.equal(packageOf("@kubernetes/client-node"), "@kubernetes/client-node");
    assert.equal(packageOf("@smithy/x/dist/y.js"), "@smithy/x");
    for (const local of ["./x.js", "../y.js", "/abs.js", "node:fs"])
      assert.equal(packageOf(local), undefined);
  });

  it("resolves a dependency the way Node does: nested first, then up the tree", () => {
    assert.equal(resolveIn(lock, "node_modules/b", "c"), "node_modules/b/node_modules/c");
    assert.equal(resolveIn(lock, "node_modules/a", "c"), "node_modules/c");
    assert.equal(resolveIn(lock, "node_modules/@s/d", "c"), "node_modules/c");
    assert.equal(resolveIn(lock, "node_modules/b/node_modules/c", "e"), "node_modules/e");
    assert.equal(resolveIn(lock, "", "missing"), undefined);
  });

  it("keeps what the roots need, nested copies included, and nothing else", () => {
    assert.deepEqual([...closure(lock, ["a", "b"])].sort(), [
      "node_modules/@s/d",
      "node_modules/a",
      "node_modules/b",
      "node_modules/b/node_modules/c",
      "node_modules/c",
      "node_modules/e",
    ]);
    assert.deepEqual([...closure(lock, ["@s/d"])].sort(), ["node_modules/@s/d", "node_modules/c"]);
    assert.throws(() => closure(lock, ["nope"]), /the programs needs nope/);
    const broken: LockPackages = { "node_modules/x": { dependencies: { gone: "1" } } };
    assert.throws(() => closure(broken, ["x"]), /node_modules\/x needs gone/);
  });

  it("on the real lockfile: all runtime dependencies close over exactly npm's non-dev set", () => {
    const real = (
      JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: LockPackages }
    ).packages;
    const keep = closure(real, Object.keys(real[""]!.dependencies ?? {}));
    const prod = Object.entries(real)
      .filter(([path, e]) => path.startsWith("node_modules/") && !(e as { dev?: boolean }).dev)
      .map(([path]) => path)
      .sort();
    assert.deepEqual([...keep].sort(), prod);
  });

  it("reads a program's package imports, builtins and local files excluded", async () => {
    const packages = await importedPackages([join(repoRoot, "runtimes", "sandbox", "main.ts")]);
    assert.ok(packages.includes("zod"), packages.join(" "));
    assert.ok(!packages.includes("express") && !packages.includes("pg"), packages.join(" "));
    assert.ok(packages.every((p) => !p.startsWith("node:") && !p.startsWith(".")));
  });
});
