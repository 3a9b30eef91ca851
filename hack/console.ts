// Builds the web console (console/) into a static bundle the gateway serves under /ui:
// index.html plus one script and one stylesheet named by their content hash, everything
// bundled (no load from anywhere else at run time). A build output, never committed.
//   node hack/console.ts [outDir]      default dist/console (part of `npm run build`)
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface ConsoleBuild {
  dir: string;
  script: string;
  style: string;
}

/** Bundles console/ into `outDir` (emptied first) and writes its index.html. */
export async function buildConsole(outDir = join(root, "dist", "console")): Promise<ConsoleBuild> {
  const dir = resolve(outDir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, "console", "main.tsx")],
    outdir: dir,
    entryNames: "[name].[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome120", "firefox120", "safari17"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: false,
    legalComments: "linked",
    metafile: true,
    logLevel: "warning",
    tsconfig: join(root, "console", "tsconfig.json"),
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
  const script = outputs.find((f) => f.endsWith(".js"));
  const style = outputs.find((f) => f.endsWith(".css"));
  if (!script || !style)
    throw new Error(`the console bundle lacks a script or a stylesheet: ${outputs.join(", ")}`);
  const template = await readFile(join(root, "console", "index.html"), "utf8");
  await writeFile(
    join(dir, "index.html"),
    template.replace("%STYLE%", `/ui/${style}`).replace("%SCRIPT%", `/ui/${script}`),
  );
  return { dir, script, style };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildConsole(process.argv[2]);
  console.log(`built the console into ${out.dir} (${out.script}, ${out.style})`);
}
