// Static checks of the Dockerfiles, quick and without podman: pinned base images, a non-root
// numeric USER in the final stage, every file they copy exists (and is not excluded by
// .dockerignore), they copy exactly the folders and files their programs import, and the
// entrypoint is built from a source file by `npm run build` (tsconfig.build.json). The
// container suite (test/containers/) builds and runs them.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";
import { OPERATOR_ENV, OPERATOR_NODE_FLAGS } from "../test/harness/operator.ts";
import { repoRoot } from "../test/harness/paths.ts";

const dockerfiles = [
  "Dockerfile.operator",
  "Dockerfile.gateway",
  "Dockerfile.agent",
  "Dockerfile.sandbox",
].filter((f) => existsSync(join(repoRoot, f)));
const ignored = readFileSync(join(repoRoot, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const buildInclude = (
  JSON.parse(readFileSync(join(repoRoot, "tsconfig.build.json"), "utf8")) as { include: string[] }
).include;

const RELATIVE_IMPORT = /(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g;

/** Every repository file the given sources import, themselves included (type imports too: tsc needs them). */
function importClosure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    if (!/\.tsx?$/.test(file)) continue;
    for (const m of readFileSync(join(repoRoot, file), "utf8").matchAll(RELATIVE_IMPORT))
      todo.push(normalize(join(dirname(file), m[1]!)));
  }
  return seen;
}

/** The .ts sources (not tests) a COPY source brings into the build. */
function tsSources(src: string): string[] {
  const path = join(repoRoot, src);
  if (!statSync(path).isDirectory()) return src.endsWith(".ts") ? [src] : [];
  return readdirSync(path, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .map((f) => join(src, f));
}

describe("Dockerfiles", () => {
  it("exist for the operator and the sandbox at least", () => {
    assert.ok(dockerfiles.includes("Dockerfile.operator") && dockerfiles.includes("Dockerfile.sandbox"));
  });

  it("run the operator with the Node flags the tests and benchmarks run it with", () => {
    const text = readFileSync(join(repoRoot, "Dockerfile.operator"), "utf8");
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(text)?.[1];
    assert.deepEqual(JSON.parse(entry ?? "[]"), ["node", ...OPERATOR_NODE_FLAGS, "dist/operator/main.js"]);
    const env = /^ENV (.*)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
    for (const [k, v] of Object.entries(OPERATOR_ENV)) assert.ok(env.includes(`${k}=${v}`), `ENV ${k}=${v}`);
  });

  for (const file of dockerfiles) {
    const text = readFileSync(join(repoRoot, file), "utf8");
    const lines = text.split("\n").map((l) => l.trim());
    const stages = text.split(/^FROM /m).slice(1);

    it(`${file}: pinned base images, multi-stage`, () => {
      const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];
      assert.ok(arg, "base image given as ARG NODE_IMAGE");
      assert.match(arg, /^node:\d+\.\d+\.\d+-[a-z]+-slim$/, "a fully pinned slim Node image");
      assert.ok(stages.length >= 2, "build and runtime stages");
      assert.ok(!/:latest\b/.test(text));
    });

    it(`${file}: runs as a non-root numeric user`, () => {
      const final = stages.at(-1)!;
      const user = /^USER (\d+)(?::(\d+))?$/m.exec(final);
      assert.ok(user, "USER uid:gid in the final stage");
      assert.notEqual(Number(user[1]), 0);
    });

    it(`${file}: copies files that exist and are not ignored`, () => {
      for (const line of lines.filter((l) => l.startsWith("COPY ") && !l.includes("--from="))) {
        const parts = line.split(/\s+/).slice(1, -1);
        for (const src of parts) {
          assert.ok(existsSync(join(repoRoot, src)), `${src} exists`);
          const top = src.split("/")[0]!;
          assert.ok(
            !ignored.includes(top) && !ignored.includes(src),
            `${src} is not excluded by .dockerignore`,
          );
        }
      }
    });

    it(`${file}: copies every source its programs import, and no folder or file they do not`, () => {
      // The programs of the image: the entrypoint and the other commands its comments name.
      const programs = [...new Set([...text.matchAll(/\bdist\/([\w/.-]+)\.js\b/g)].map((m) => `${m[1]}.ts`))];
      // The web console, bundled into the gateway image by `npm run build`, is a program too.
      if (lines.includes("COPY console ./console")) programs.push("console/main.tsx");
      const needed = importClosure(programs);
      const sources = lines
        .filter((l) => l.startsWith("COPY ") && !l.includes("--from="))
        .flatMap((l) => l.split(/\s+/).slice(1, -1))
        // hack/: build-stage tools (the node_modules pruner), not part of the program.
        .filter((src) => tsSources(src).length > 0 && !src.startsWith("hack/"));
      const copies = (src: string, f: string) => f === src || f.startsWith(`${src}/`);
      for (const f of needed)
        assert.ok(
          sources.some((src) => copies(src, f)),
          `${f} is imported by ${programs.join(", ")} but not copied`,
        );
      for (const src of sources)
        assert.ok(
          [...needed].some((f) => copies(src, f)),
          `${src} is copied but nothing in it is imported by ${programs.join(", ")}`,
        );
    });

    it(`${file}: keeps in node_modules only what its programs import`, () => {
      const programs = [...new Set([...text.matchAll(/\bdist\/([\w/.-]+)\.js\b/g)].map((m) => m[0]))];
      const pruned = /node hack\/images\/prune\.ts ((?:dist\/\S+\.js ?)+)/.exec(text)?.[1]?.trim().split(" ");
      assert.ok(pruned, "the build stage runs hack/images/prune.ts");
      assert.deepEqual([...pruned].sort(), programs.sort(), "on every program the image runs");
      assert.ok(!text.includes("npm prune"), "no second, coarser prune");
    });

    it(`${file}: the entrypoint is compiled from a source in the build`, () => {
      // node, its own flags (V8's heap sizes), then the program.
      const entry = /^ENTRYPOINT \["node", (?:"--[\w=-]+", )*"dist\/(.+)\.js"\]$/m.exec(text)?.[1];
      assert.ok(entry, "ENTRYPOINT runs a dist/ file with node");
      assert.ok(existsSync(join(repoRoot, `${entry}.ts`)), `${entry}.ts exists`);
      const top = entry.split("/")[0]!;
      assert.ok(
        buildInclude.some((p) => p.startsWith(`${top}/`)),
        `${top}/ is compiled by npm run build`,
      );
    });
  }
});
