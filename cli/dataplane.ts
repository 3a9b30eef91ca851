// The CLI's data-plane commands, on the gateway's data-plane routes through the generated
// client: exec (streamed, exiting with the remote exit code), cp (files both ways, a directory
// from the workspace as its tar download), task (the agent's answer streamed) and logs (a
// pipeline run's pod log).
import { createWriteStream, openAsBlob } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import { constants as os } from "node:os";
import { basename, join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Option, type Command } from "commander";
import {
  NDJSON,
  ProblemError,
  records,
  unwrap,
  type AgentryClient,
  type ExecRecord,
  type TaskRecord,
} from "../clients/typescript/index.ts";
import { parseDuration } from "../lib/cli/duration.ts";
import { extractTar } from "../lib/tar.ts";
import { UsageError } from "./config.ts";

/** Ends the CLI with this exit code (the remote command's, or 130 after Ctrl-C). */
export class ExitCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/** Exit codes of exec beyond the remote command's own. */
export const EXIT = { interrupted: 130, timedOut: 124 } as const;

type Connect = () => { client: AgentryClient; namespace: string };
type Out = NodeJS.WritableStream;

/** Seconds from "30", "30s", "5m" or "1h30m". */
function seconds(flag: string, text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  try {
    return parseDuration(flag, text) / 1000;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Runs `work` with an AbortSignal that Ctrl-C (SIGINT) fires, after `onInterrupt` (say, a
 * DELETE of the remote command) has had its chance; a second Ctrl-C exits at once.
 */
async function interruptible<T>(
  work: (signal: AbortSignal, interrupted: () => boolean) => Promise<T>,
  onInterrupt: () => Promise<unknown> = () => Promise.resolve(),
): Promise<T> {
  const abort = new AbortController();
  let interrupted = false;
  const handler = () => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    void onInterrupt()
      .catch(() => undefined)
      .finally(() => abort.abort());
  };
  process.on("SIGINT", handler);
  try {
    return await work(abort.signal, () => interrupted);
  } catch (e) {
    if (interrupted) throw new ExitCode(EXIT.interrupted);
    throw e;
  } finally {
    process.off("SIGINT", handler);
  }
}

/** Where a cp operand points: `[namespace/]workspace:path` in a workspace, else a local path. */
export type Location =
  { remote: true; namespace?: string; workspace: string; path: string } | { remote: false; path: string };

const NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const REMOTE = new RegExp(`^(?:(${NAME})/)?(${NAME}):(.*)$`);

export function location(operand: string): Location {
  const m = REMOTE.exec(operand);
  if (!m) return { remote: false, path: operand };
  const path = m[5]!.replace(/^\.\/?/, "");
  return { remote: true, ...(m[1] ? { namespace: m[1] } : {}), workspace: m[3]!, path };
}

export function dataPlaneCommands(cmd: Command, connect: Connect, out: Out, err: Out): void {
  cmd
    .command("exec")
    .description(
      "run a command in a workspace, its output streamed; exits with the command's exit code (Ctrl-C cancels it)",
    )
    .argument("<workspace>", "the Workspace")
    .argument("<command...>", "the program and its arguments (put -- before them)")
    .option("-e, --env <K=V>", "an environment variable (repeatable)", collect, [])
    .option("-w, --workdir <dir>", "working directory, relative to the workspace")
    .option("--timeout <duration>", "kill the command after this long: 30, 30s, 5m (the gateway caps it)")
    .option("-i, --stdin", "send this program's standard input to the command (read whole first)")
    .addHelpText(
      "after",
      `
Exit codes: the command's own; ${EXIT.timedOut} when it timed out, 128+N when a signal N ended it,
${EXIT.interrupted} after Ctrl-C, 1 when the gateway refused or the stream broke.

Example: agentry exec ws -- sh -c 'echo hi; exit 3'`,
    )
    .action(
      async (
        workspace: string,
        command: string[],
        o: { env: string[]; workdir?: string; timeout?: string; stdin?: boolean },
      ) => {
        const env: Record<string, string> = {};
        for (const kv of o.env) {
          const eq = kv.indexOf("=");
          if (eq <= 0) throw new UsageError(`--env takes NAME=VALUE, got "${kv}"`);
          env[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        const body = {
          command,
          ...(o.env.length ? { env } : {}),
          ...(o.workdir ? { cwd: o.workdir } : {}),
          ...(o.timeout ? { timeoutSeconds: seconds("timeout", o.timeout) } : {}),
          ...(o.stdin ? { stdin: (await readStdin()).toString("utf8") } : {}),
        };
        const { client, namespace } = connect();
        const path = { namespace, name: workspace };
        let execId: string | undefined;
        const code = await interruptible(
          async (signal, interrupted) => {
            const stream = unwrap(
              await client.POST("/v1/namespaces/{namespace}/workspaces/{name}/exec", {
                params: { path },
                body,
                headers: { accept: NDJSON },
                parseAs: "stream",
                signal,
              }),
            );
            for await (const r of records<ExecRecord>(stream)) {
              if (r.type === "started") execId = r.execId;
              else if (r.type === "stdout") out.write(r.data);
              else if (r.type === "stderr") err.write(r.data);
              else if (r.type === "error") {
                if (interrupted()) return EXIT.interrupted;
                err.write(`error: ${r.detail}\n`);
                return 1;
              } else {
                // Cancelled by our Ctrl-C (the DELETE made the sandbox kill it): 130, as for a local command.
                if (interrupted()) return EXIT.interrupted;
                if (r.truncated) err.write("warning: the output was cut at the sandbox's limit\n");
                if (r.timedOut) {
                  err.write(
                    `error: the command timed out after ${body.timeoutSeconds ?? "the gateway's limit of"}s\n`,
                  );
                  return EXIT.timedOut;
                }
                if (r.exitCode !== null) return r.exitCode;
                const n = r.signal ? (os.signals as Record<string, number>)[r.signal] : undefined;
                return n ? 128 + n : 1;
              }
            }
            if (interrupted()) return EXIT.interrupted;
            err.write("error: the stream ended before the command did\n");
            return 1;
          },
          // Ctrl-C: cancel by id (the stream then ends), and close the stream in any case.
          async () =>
            execId &&
            client.DELETE("/v1/namespaces/{namespace}/workspaces/{name}/exec/{execId}", {
              params: { path: { ...path, execId } },
              signal: AbortSignal.timeout(5000),
            }),
        );
        if (code !== 0) throw new ExitCode(code);
      },
    );

  cmd
    .command("cp")
    .description("copy files to and from a workspace: a file either way, a directory either way")
    .argument("<source>", "a local path, - (stdin) or [namespace/]workspace:path")
    .argument("<destination>", "a local path, - (stdout) or [namespace/]workspace:path")
    .addHelpText(
      "after",
      `
A destination that is an existing directory, ends with "/" or is a workspace's top ("ws:")
receives the source under its own name; any other destination is the copy's name.
A directory from a workspace comes as its tar download, extracted (symbolic links are left
out); a local directory goes up file by file (empty directories and links are left out).

Examples:
  agentry cp notes.txt ws:docs/           # -> docs/notes.txt in Workspace ws
  agentry cp ws:docs/notes.txt ./copy.txt
  agentry cp ws:src ./src-copy            # a directory, extracted
  agentry cp other-ns/ws:out.log -        # to stdout`,
    )
    .action(async (source: string, destination: string) => {
      const from = location(source);
      const to = location(destination);
      if (from.remote === to.remote)
        throw new UsageError(
          from.remote
            ? "copy between workspaces by way of a local copy"
            : 'one side must be in a workspace: "workspace:path"',
        );
      const c = connect();
      if (from.remote && !to.remote) await download(c, from, to.path, out);
      else if (!from.remote && to.remote) await upload(c, from.path, to);
    });

  cmd
    .command("task")
    .description("send a task to an agent and print its answer as it comes (Ctrl-C cancels it)")
    .argument("<agent>", "the AgentRuntime")
    .argument("<text>", "the task; - reads it from stdin")
    .option("--timeout <duration>", "give the model this long: 30, 30s, 5m")
    .addOption(
      new Option("-o, --output <format>", "text (the answer, streamed) or json (the whole result)")
        .choices(["text", "json"])
        .default("text"),
    )
    .action(async (agent: string, text: string, o: { timeout?: string; output: "text" | "json" }) => {
      const body = {
        input: text === "-" ? (await readStdin()).toString("utf8") : text,
        ...(o.timeout ? { timeoutSeconds: seconds("timeout", o.timeout) } : {}),
      };
      const { client, namespace } = connect();
      const code = await interruptible(async (signal) => {
        const stream = unwrap(
          await client.POST("/v1/namespaces/{namespace}/agentruntimes/{name}/tasks", {
            params: { path: { namespace, name: agent } },
            body,
            headers: { accept: NDJSON },
            parseAs: "stream",
            signal,
          }),
        );
        let last = "\n";
        for await (const r of records<TaskRecord>(stream)) {
          if (r.type === "output" && o.output === "text") {
            out.write(r.data);
            if (r.data) last = r.data;
          } else if (r.type === "result") {
            if (o.output === "json") {
              const { type: _, ...result } = r;
              out.write(`${JSON.stringify(result, null, 2)}\n`);
            } else if (!last.endsWith("\n")) out.write("\n");
            return 0;
          } else if (r.type === "error") {
            if (o.output === "text" && !last.endsWith("\n")) out.write("\n");
            err.write(`error: the agent answered ${r.status}: ${r.detail}\n`);
            return 1;
          }
        }
        err.write("error: the stream ended before the agent's answer did\n");
        return 1;
      });
      if (code !== 0) throw new ExitCode(code);
    });

  cmd
    .command("logs")
    .description("print the log of a pipeline run's pod (the latest run unless --run names one)")
    .argument("<pipeline>", "the Pipeline")
    .option("--run <job>", "the run (its Job's name; see the gateway's runs list)")
    .option("-f, --follow", "keep printing as the pod logs (Ctrl-C stops)")
    .option("--tail <lines>", "only the last lines", (v) => integer("tail", v))
    .option("--since <duration>", "only what was logged in this last while: 30s, 5m, 1h")
    .option("--timestamps", "each line with its time")
    .option("-c, --container <name>", "the container (default: the pod's only one)")
    .option("--pod <name>", "one of the run's pods (default: the newest)")
    .action(
      async (
        name: string,
        o: {
          run?: string;
          follow?: boolean;
          tail?: number;
          since?: string;
          timestamps?: boolean;
          container?: string;
          pod?: string;
        },
      ) => {
        const { client, namespace } = connect();
        let run = o.run;
        if (!run) {
          const runs = unwrap(
            await client.GET("/v1/namespaces/{namespace}/pipelines/{name}/runs", {
              params: { path: { namespace, name } },
            }),
          );
          run = runs.items[0]?.name;
          if (!run) {
            err.write(`error: Pipeline ${namespace}/${name} has no runs yet\n`);
            throw new ExitCode(1);
          }
        }
        const query = {
          ...(o.follow ? { follow: true } : {}),
          ...(o.tail !== undefined ? { tailLines: o.tail } : {}),
          ...(o.since ? { sinceSeconds: Math.ceil(seconds("since", o.since)) } : {}),
          ...(o.timestamps ? { timestamps: true } : {}),
          ...(o.container ? { container: o.container } : {}),
          ...(o.pod ? { pod: o.pod } : {}),
        };
        await interruptible(async (signal) => {
          const stream = unwrap(
            await client.GET("/v1/namespaces/{namespace}/pipelines/{name}/runs/{run}/logs", {
              params: { path: { namespace, name, run }, query },
              parseAs: "stream",
              signal,
            }),
          );
          if (stream) for await (const chunk of stream) out.write(chunk as Uint8Array);
        }).catch((e: unknown) => {
          // Ctrl-C ends a followed log: that is how it stops, not a failure.
          if (!(e instanceof ExitCode && o.follow)) throw e;
        });
      },
    );
}

function integer(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} takes a whole number, got "${v}"`);
  return Number(v);
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type Remote = Extract<Location, { remote: true }>;

const files = (c: ReturnType<Connect>, r: Remote) => ({
  namespace: r.namespace ?? c.namespace,
  name: r.workspace,
});

/** The type of a workspace path ("dir" for its top), or undefined when it is not there. */
async function remoteType(c: ReturnType<Connect>, r: Remote): Promise<string | undefined> {
  if (!r.path.replace(/\/+$/, "")) return "dir";
  const path = r.path.replace(/\/+$/, "");
  const parent = posix.dirname(path);
  const listing = await c.client.GET("/v1/namespaces/{namespace}/workspaces/{name}/files", {
    params: { path: files(c, r), query: parent === "." ? {} : { path: parent } },
  });
  if (listing.response.status === 404) return undefined;
  return unwrap(listing).entries.find((e) => e.name === posix.basename(path))?.type;
}

async function download(c: ReturnType<Connect>, from: Remote, local: string, out: Out): Promise<void> {
  const type = await remoteType(c, from);
  const where = `${from.workspace}:${from.path}`;
  if (type === undefined)
    throw new ProblemError(404, { title: "Not Found", detail: `${where}: no such file or directory` });
  const name = posix.basename(from.path.replace(/\/+$/, "")) || from.workspace;
  const into =
    local !== "-" && (local.endsWith("/") || (await stat(local).catch(() => undefined))?.isDirectory());
  const target = into ? join(local, name) : local;
  const path = files(c, from);
  if (type === "dir") {
    if (local === "-")
      throw new UsageError(`${where} is a directory: name a local directory to extract it into`);
    const query = from.path.replace(/\/+$/, "") ? { path: from.path.replace(/\/+$/, "") } : {};
    const tar = unwrap(
      await c.client.GET("/v1/namespaces/{namespace}/workspaces/{name}/files/archive", {
        params: { path, query },
        parseAs: "stream",
      }),
    );
    await extractTar(tar ?? Readable.from([]), target);
    return;
  }
  if (type !== "file") throw new UsageError(`${where} is a ${type}, not a file or directory: not copied`);
  const body = unwrap(
    await c.client.GET("/v1/namespaces/{namespace}/workspaces/{name}/files/content", {
      params: { path, query: { path: from.path } },
      parseAs: "stream",
    }),
  );
  const source = body ? Readable.fromWeb(body) : Readable.from([]);
  if (local === "-") await pipeline(source, out, { end: false });
  else await pipeline(source, createWriteStream(target));
}

async function upload(c: ReturnType<Connect>, local: string, to: Remote): Promise<void> {
  const st = local === "-" ? undefined : await lstat(local).catch(() => undefined);
  if (local !== "-" && !st) throw new UsageError(`${local}: no such file or directory`);
  const trimmed = to.path.replace(/\/+$/, "");
  const into = !trimmed || to.path.endsWith("/") || (await remoteType(c, to)) === "dir";
  if (local === "-" && into) throw new UsageError("stdin needs a file name in the workspace: ws:path/name");
  const target = into ? posix.join(trimmed, basename(local)) : trimmed;
  const put = async (file: string | Buffer, path: string) =>
    unwrap(
      await c.client.PUT("/v1/namespaces/{namespace}/workspaces/{name}/files/content", {
        params: { path: files(c, to), query: { path } },
        body: (typeof file === "string" ? await openAsBlob(file) : new Blob([file])) as unknown as string,
        bodySerializer: (b: unknown) => b as Blob,
        headers: { "content-type": "application/octet-stream" },
      }),
    );
  if (local === "-") await put(await readStdin(), target);
  else if (st!.isFile()) await put(local, target);
  else if (st!.isDirectory()) {
    for (const rel of await localFiles(local))
      await put(join(local, ...rel.split("/")), posix.join(target, rel));
  } else throw new UsageError(`${local}: not a file or directory`);
}

/** The regular files under a local directory, "/"-separated and relative to it. */
async function localFiles(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isFile()) found.push(rel);
    else if (e.isDirectory()) found.push(...(await localFiles(join(dir, e.name), rel)));
  }
  return found;
}
