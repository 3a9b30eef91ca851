// A snippet run in a fresh Node process, for unit tests about what a program loads: the
// modules it imports are resolved from the repository root, TypeScript through tsx.
import { execFileSync } from "node:child_process";
import { repoRoot } from "./paths.ts";

/** `source` as an ES module in a new Node (with tsx); its last line of stdout, parsed as JSON. */
export function lastJsonLineOf<T>(source: string): T {
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", source], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as T;
}

/** `await import(...)` of each module, in order. */
export const importsOf = (modules: string[]): string =>
  modules.map((m) => `await import(${JSON.stringify(m)});`).join(" ");
