// Benchmark: the idle operator. The compiled operator (as the images run it) watching one
// empty namespace, started `runs` times: its resident set size once its caches are synced
// and it has sat idle for a while (goal: under 60 MiB), and where its heap goes. Beside it,
// in the same run, two floors with the same Node and flags: an empty program, and one that
// only imports the packages the compiled operator imports (found by walking its imports).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { OPERATOR_ENV, OPERATOR_NODE_FLAGS } from "../test/harness/operator.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { waitFor } from "../test/harness/process.ts";
import { heapSummary } from "./heap.ts";
import {
  benchNamespace,
  benchOperator,
  envNumber,
  fig,
  rssMiB,
  rssParts,
  say,
  type BenchContext,
  type BenchResult,
} from "./lib.ts";

/** The libraries ../shared/DESIGN.md names for every program: schemas, metrics, logs. */
const DESIGN_LIBRARIES = ["zod", "prom-client", "winston"];

/** The packages (bare specifiers, node: builtins included) the module graph from `entry` imports. */
export function importedPackages(entry: string): string[] {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    // Static imports only: what a dynamic import() loads comes when it is first used.
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/g)) {
      const spec = m[1] ?? "";
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else packages.add(spec);
    }
    // Builtins taken with process.getBuiltinModule (lib/http/nodehttp.ts) count too.
    for (const m of text.matchAll(/process\.getBuiltinModule\("([^"]+)"\)/g)) packages.add(m[1] ?? "");
  };
  visit(entry);
  return [...packages].sort();
}

/**
 * The floor's statement that loads one package: builtins as the operator takes them, from
 * process.getBuiltinModule (an ES module import of node:http would load undici, which the
 * operator does not), packages with import().
 */
function loadPackage(spec: string): string {
  return spec.startsWith("node:")
    ? `process.getBuiltinModule(${JSON.stringify(spec)});`
    : `await import(${JSON.stringify(spec)});`;
}

/** RSS (MiB) of a program run with the operator's Node flags, 3 s after it says it is ready. */
async function floorRss(source: string): Promise<{ rss: number; anon: number; file: number }> {
  const child = spawn(process.execPath, [...OPERATOR_NODE_FLAGS, "--input-type=module", "-e", source], {
    cwd: repoRoot,
    env: { ...process.env, ...OPERATOR_ENV },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await once(child.stdout, "data");
    await new Promise((r) => setTimeout(r, 3000));
    return { rss: rssMiB(child.pid), ...rssParts(child.pid) };
  } finally {
    child.kill("SIGKILL");
  }
}

export async function idleBench(ctx: BenchContext): Promise<BenchResult> {
  const runs = envNumber("RUNS", 3);
  const idleS = envNumber("IDLE_S", 15);
  const rss: number[] = [];
  const peak: number[] = [];
  const notes: string[] = [];
  for (let r = 0; r < runs; r++) {
    const namespace = await benchNamespace(ctx, "idle");
    const operator = await benchOperator(ctx, [namespace], [], undefined, {
      compiled: true,
      heapSnapshots: r === 0,
    });
    await waitFor(
      "operator caches synced",
      async () => (await fetch(`http://127.0.0.1:${operator.port}/readyz`)).ok,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // Idle: sample the RSS (VmRSS, what process.memoryUsage().rss reads) every 250 ms.
    const samples: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < idleS * 1000) {
      samples.push(rssMiB(operator.child.pid));
      await new Promise((r) => setTimeout(r, 250));
    }
    rss.push(samples.at(-1)!);
    const parts = rssParts(operator.child.pid);
    notes.push(
      `run ${r + 1}: RSS ${samples.at(-1)!.toFixed(1)} MiB = ${parts.anon.toFixed(1)} MiB anonymous (V8 heap, buffers) + ${parts.file.toFixed(1)} MiB file-backed (node's binary and code pages)`,
    );
    peak.push(Math.max(...samples));
    say(
      `idle run ${r + 1}: RSS ${samples.at(-1)!.toFixed(1)} MiB after ${idleS}s (peak ${Math.max(...samples).toFixed(1)})`,
    );
    if (r === 0) notes.push(...(await heapSummary(operator, "idle operator")));
    await operator.kill("SIGKILL");
  }
  // The floors: an empty program; ones importing (not using) the builtins the operator
  // loads, those and the three libraries ../shared/DESIGN.md names for every program (zod,
  // winston, prom-client), and all the operator's packages: what is left below 60 MiB for
  // the operator's own code and state.
  const packages = importedPackages(join(repoRoot, "dist", "operator", "main.js"));
  const builtins = packages.filter((p) => p.startsWith("node:"));
  const designLibraries = DESIGN_LIBRARIES.filter((p) => packages.includes(p));
  const core = [...builtins, ...designLibraries];
  const keepAlive = `console.log("ready"); setInterval(() => {}, 60_000);`;
  const importing = (list: string[]) => `${list.map(loadPackage).join(" ")} ${keepAlive}`;
  const empty: number[] = [];
  const withBuiltins: number[] = [];
  const withCore: number[] = [];
  const libraries: number[] = [];
  for (let r = 0; r < runs; r++) {
    empty.push((await floorRss(keepAlive)).rss);
    withBuiltins.push((await floorRss(importing(builtins))).rss);
    withCore.push((await floorRss(importing(core))).rss);
    const lib = await floorRss(importing(packages));
    libraries.push(lib.rss);
    notes.push(
      `floor run ${r + 1}: empty program ${empty.at(-1)!.toFixed(1)} MiB; the builtins ${withBuiltins.at(-1)!.toFixed(1)} MiB; and ${designLibraries.join(", ")} ${withCore.at(-1)!.toFixed(1)} MiB; importing the operator's packages ${lib.rss.toFixed(1)} MiB (${lib.anon.toFixed(1)} anonymous + ${lib.file.toFixed(1)} file-backed)`,
    );
  }
  say(
    `idle floors: empty Node ${fig(empty, "MiB").value} MiB, builtins ${fig(withBuiltins, "MiB").value}, and DESIGN's libraries ${fig(withCore, "MiB").value}, with the operator's packages ${fig(libraries, "MiB").value} MiB`,
  );
  const idle = fig(rss, "MiB", { goal: "< 60" });
  idle.met = idle.value < 60;
  return {
    name: "idle",
    title: "Idle operator: resident memory on an empty namespace (compiled)",
    date: new Date().toISOString(),
    sizes: { runs, idleSeconds: idleS, namespaces: 1, objects: 0 },
    figures: {
      operator_idle_rss_mib: { ...idle, note: `RSS after ${idleS}s idle with synced caches` },
      operator_idle_peak_rss_mib: fig(peak, "MiB", { note: "largest RSS sample while idle" }),
      floor_empty_node_rss_mib: fig(empty, "MiB", {
        note: "an empty program on the same Node with the operator's flags and environment, 3 s after start",
      }),
      floor_builtins_rss_mib: fig(withBuiltins, "MiB", {
        note: `a program that only loads the builtins the compiled operator loads, as it loads them: ${builtins.join(", ")}`,
      }),
      floor_builtins_and_design_libraries_rss_mib: fig(withCore, "MiB", {
        note: `the builtins and the libraries ../shared/DESIGN.md names for every program: ${designLibraries.join(", ")}`,
      }),
      floor_operator_packages_rss_mib: fig(libraries, "MiB", {
        note: `a program that only imports the packages the compiled operator imports: ${packages.join(", ")}`,
      }),
    },
    notes,
  };
}
