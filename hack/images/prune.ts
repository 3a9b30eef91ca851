// In an image's build stage, after `npm ci` and `npm run build` (or `build:programs`): keep in node_modules only
// the packages the image's programs import (and what those need, as package-lock.json
// records it), and remove everything else, development tools included.
//   node hack/images/prune.ts dist/operator/main.js dist/webhook/main.js
// The programs' imports are read with esbuild (a bundle pass that writes nothing and keeps
// every package external); the packages' own dependencies come from the lockfile, so a
// package's lazy or computed requires of its declared dependencies still find them.
import { readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";

export interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  optional?: boolean;
}
export type LockPackages = Record<string, LockEntry>;

/** The package a bare import specifier names: "@s/p/sub" → "@s/p", "p/sub" → "p". */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:"))
    return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Where Node finds package `name` from the package at lock path `from` ("" is the project). */
export function resolveIn(lock: LockPackages, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ""}node_modules/${name}`;
    if (lock[candidate]) return candidate;
    if (base === "") return undefined;
    const up = base.lastIndexOf("/node_modules/");
    base = up < 0 ? "" : base.slice(0, up);
  }
}

/** Lock paths of the packages `roots` need, with everything they need in turn. */
export function closure(lock: LockPackages, roots: string[]): Set<string> {
  const keep = new Set<string>();
  const visit = (from: string, name: string, required: boolean, who: string) => {
    const path = resolveIn(lock, from, name);
    if (!path) {
      if (required) throw new Error(`${who} needs ${name}, which package-lock.json does not install`);
      return;
    }
    if (keep.has(path)) return;
    keep.add(path);
    const entry = lock[path]!;
    for (const dep of Object.keys(entry.dependencies ?? {})) visit(path, dep, true, path);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(path, dep, false, path);
    for (const dep of Object.keys(entry.peerDependencies ?? {}))
      visit(path, dep, !entry.peerDependenciesMeta?.[dep]?.optional, path);
  };
  for (const root of roots) visit("", root, true, "the programs");
  return keep;
}

/** Packages the programs at `entries` import (builtins excluded), read by esbuild. */
export async function importedPackages(entries: string[]): Promise<string[]> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: entries,
    bundle: true,
    platform: "node",
    format: "esm",
    packages: "external",
    metafile: true,
    write: false,
    outdir: "unused",
    logLevel: "silent",
  });
  const names = new Set<string>();
  for (const input of Object.values(result.metafile.inputs))
    for (const imp of input.imports)
      if (imp.external) {
        const name = packageOf(imp.path);
        if (name && !isBuiltin(name)) names.add(name);
      }
  return [...names].sort();
}

const isBuiltin = (name: string) => process.getBuiltinModule(name) !== undefined;

if (import.meta.main) {
  const entries = process.argv.slice(2);
  if (entries.length === 0) throw new Error("usage: node hack/images/prune.ts <program.js>...");
  const lock = (JSON.parse(readFileSync("package-lock.json", "utf8")) as { packages: LockPackages }).packages;
  const roots = await importedPackages(entries);
  const keep = closure(lock, roots);
  let removed = 0;
  for (const path of Object.keys(lock)) {
    if (!path.startsWith("node_modules/") || keep.has(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed++;
  }
  // Command shims and npm's own record of the full install describe what is gone.
  for (const path of [...keep].map((p) => join(p, "node_modules", ".bin")).concat("node_modules/.bin"))
    rmSync(path, { recursive: true, force: true });
  rmSync("node_modules/.package-lock.json", { force: true });
  for (const scope of readdirSync("node_modules").filter((d) => d.startsWith("@")))
    if (readdirSync(join("node_modules", scope)).length === 0) rmdirSync(join("node_modules", scope));
  console.log(`imports: ${roots.join(" ")}`);
  console.log(`kept ${keep.size} packages, removed ${removed}`);
}
