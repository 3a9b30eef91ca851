#!/usr/bin/env node
// `agentry`: the command line of the agentry gateway, built on its generated TypeScript client
// (clients/typescript). Exit codes: 0 done, 1 the gateway refused or failed (its problem
// detail on stderr), 2 a usage error; `exec` exits with the remote command's code.
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import * as yaml from "js-yaml";
import {
  createClient,
  KINDS,
  ProblemError,
  unwrap,
  watch,
  type AgentryClient,
  type KindInfo,
} from "../clients/typescript/index.ts";
import {
  configPath,
  readConfig,
  resolveSettings,
  UsageError,
  writeConfig,
  type GlobalFlags,
} from "./config.ts";
import { completionScript, SHELLS } from "./completion.ts";
import { dataPlaneCommands, ExitCode } from "./dataplane.ts";
import { FORMATS, render, type Format } from "./output.ts";
import { errorMessage } from "../lib/log.ts";

type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } } & Record<
  string,
  unknown
>;

/** A kind by any of its names: plural, singular, short name or Kind (any case). */
export function kindOf(name: string): KindInfo {
  const n = name.toLowerCase();
  const k = KINDS.find(
    (k) => k.plural === n || k.singular === n || k.kind.toLowerCase() === n || k.shortNames.includes(n),
  );
  if (!k)
    throw new UsageError(
      `unknown kind "${name}"; one of: ${KINDS.map((k) => `${k.plural} (${k.shortNames.join(", ")})`).join(", ")}`,
    );
  return k;
}

// The client's paths are typed per literal path; the CLI picks the kind at run time, so it
// builds the path from the kind's plural and uses the client untyped there.
type Loose = {
  GET(path: string, init: unknown): Promise<{ data?: unknown; error?: unknown; response: Response }>;
  POST(path: string, init: unknown): Promise<{ data?: unknown; error?: unknown; response: Response }>;
  DELETE(path: string, init: unknown): Promise<{ data?: unknown; error?: unknown; response: Response }>;
};
const loose = (c: AgentryClient) => c as unknown as Loose;

function readObjects(file: string): Obj[] {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const docs = yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  const out: Obj[] = [];
  for (const d of docs) {
    if (typeof d !== "object" || Array.isArray(d))
      throw new UsageError(`${file}: every document must be an object`);
    const o = d as Obj & { items?: Obj[] };
    if (o.kind === "List" && Array.isArray(o.items)) out.push(...o.items);
    else out.push(o);
  }
  return out;
}

export function program(out = process.stdout, err = process.stderr): Command {
  const print = (s: string) => s && out.write(s.endsWith("\n") ? s : `${s}\n`);
  const cmd = new Command("agentry")
    .description(
      "The agentry gateway from the command line: agents, pipelines, sandbox fleets and workspaces.",
    )
    .option("--gateway <url>", "gateway URL (env AGENTRY_GATEWAY_URL)")
    .option("--token <token>", "bearer token (env AGENTRY_TOKEN)")
    .option("-n, --namespace <ns>", "namespace (env AGENTRY_NAMESPACE; default: the context's, else default)")
    .option("--context <name>", "context of the config file to use")
    .option("--config <path>", "config file (env AGENTRY_CONFIG; default ~/.agentry/config)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .addHelpText(
      "after",
      "\nExit codes: 0 done, 1 the gateway refused (its problem detail on stderr), 2 a usage error;\nexec exits with the remote command's code.",
    );
  const flags = () => cmd.opts<GlobalFlags>();
  const connect = () => {
    const s = resolveSettings(flags());
    return { ...s, client: createClient({ baseUrl: s.gateway, token: s.token }) };
  };
  const formatOption = () =>
    new Option("-o, --output <format>", "table (default), wide, json, yaml or name")
      .choices(FORMATS)
      .default("table");

  cmd
    .command("get")
    .description("list objects of a kind, or show some by name")
    .argument("<kind>", "agentruntimes (ar), pipelines (pl), sandboxfleets (sbf) or workspaces (ws)")
    .argument("[names...]", "names to show (default: all)")
    .addOption(formatOption())
    .option("-A, --all-namespaces", "every namespace you may list the kind in")
    .option("-l, --selector <selector>", "label selector, e.g. app=web,tier!=db")
    .action(
      async (
        kindName: string,
        names: string[],
        o: { output: Format; allNamespaces?: boolean; selector?: string },
      ) => {
        const kind = kindOf(kindName);
        const { client, namespace } = connect();
        const items: Obj[] = [];
        if (names.length > 0) {
          for (const name of names)
            items.push(
              unwrap(
                await loose(client).GET(`/v1/namespaces/{namespace}/${kind.plural}/{name}`, {
                  params: { path: { namespace, name } },
                }),
              ) as Obj,
            );
        } else {
          const path = o.allNamespaces ? `/v1/${kind.plural}` : `/v1/namespaces/{namespace}/${kind.plural}`;
          let next: string | undefined;
          do {
            const page = unwrap(
              await loose(client).GET(path, {
                params: {
                  path: { namespace },
                  query: {
                    limit: 500,
                    ...(next ? { continue: next } : {}),
                    ...(o.selector ? { labelSelector: o.selector } : {}),
                  },
                },
              }),
            ) as { items: Obj[]; metadata?: { continue?: string } };
            items.push(...page.items);
            next = page.metadata?.continue;
          } while (next);
          if (items.length === 0 && (o.output === "table" || o.output === "wide")) {
            err.write(`No ${kind.plural} found${o.allNamespaces ? "" : ` in namespace ${namespace}`}.\n`);
            return;
          }
        }
        print(
          render(kind, items, o.output, { namespaces: o.allNamespaces ?? false, single: names.length === 1 }),
        );
      },
    );

  cmd
    .command("create")
    .description("create objects from a YAML or JSON file (several documents, or a List)")
    .argument("[kind]", "only objects of this kind (default: the kind each object names)")
    .requiredOption("-f, --filename <file>", "file to read, - for stdin")
    .addOption(
      new Option("-o, --output <format>", "name (default), json or yaml")
        .choices(["name", "json", "yaml"])
        .default("name"),
    )
    .action(async (kindName: string | undefined, o: { filename: string; output: Format }) => {
      const only = kindName ? kindOf(kindName) : undefined;
      const objects = readObjects(o.filename);
      if (objects.length === 0) throw new UsageError(`${o.filename}: no objects`);
      const { client, namespace } = connect();
      for (const obj of objects) {
        const kind = only ?? kindOf(String(obj.kind ?? ""));
        if (obj.kind !== undefined && kindOf(String(obj.kind)) !== kind)
          throw new UsageError(`${o.filename}: a ${String(obj.kind)}, not a ${kind.kind}`);
        const ns = obj.metadata?.namespace ?? namespace;
        const created = unwrap(
          await loose(client).POST(`/v1/namespaces/{namespace}/${kind.plural}`, {
            params: { path: { namespace: ns } },
            body: obj,
          }),
        ) as Obj;
        print(
          o.output === "name"
            ? `${kind.singular}/${created.metadata?.name ?? ""} created`
            : render(kind, [created], o.output, { single: true }),
        );
      }
    });

  cmd
    .command("delete")
    .description("delete objects by name")
    .argument("<kind>", "agentruntimes (ar), pipelines (pl), sandboxfleets (sbf) or workspaces (ws)")
    .argument("<names...>", "names")
    .action(async (kindName: string, names: string[]) => {
      const kind = kindOf(kindName);
      const { client, namespace } = connect();
      for (const name of names) {
        unwrap(
          await loose(client).DELETE(`/v1/namespaces/{namespace}/${kind.plural}/{name}`, {
            params: { path: { namespace, name } },
          }),
        );
        print(`${kind.singular}/${name} deleted`);
      }
    });

  cmd
    .command("watch")
    .description("print the objects of a kind, then their changes as they happen (Ctrl-C stops)")
    .argument("<kind>", "agentruntimes (ar), pipelines (pl), sandboxfleets (sbf) or workspaces (ws)")
    .addOption(
      new Option("-o, --output <format>", "table (default: EVENT and NAME), json (one event per line)")
        .choices(["table", "json"])
        .default("table"),
    )
    .action(async (kindName: string, o: { output: "table" | "json" }) => {
      const kind = kindOf(kindName);
      const { gateway, token, namespace, client } = connect();
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      const show = (e: { type: string; data: unknown }) => {
        if (o.output === "json") print(JSON.stringify(e));
        else if (e.type === "reset" || e.type === "revoked")
          print(`${e.type.toUpperCase()}   ${typeof e.data === "string" ? e.data : JSON.stringify(e.data)}`);
        else print(`${e.type.padEnd(9)} ${kind.singular}/${(e.data as Obj).metadata?.name ?? ""}`);
      };
      // Like kubectl get -w: what is there now (listed once the stream is open), then changes.
      const existing = async () => {
        const list = unwrap(
          await loose(client).GET(`/v1/namespaces/{namespace}/${kind.plural}`, {
            params: { path: { namespace } },
          }),
        ) as { items: Obj[] };
        for (const item of list.items) show({ type: "ADDED", data: item });
      };
      try {
        for await (const e of watch({
          baseUrl: gateway,
          token,
          namespace,
          plural: kind.plural,
          signal: abort.signal,
          onOpen: existing,
        })) {
          show(e);
          if (e.type === "revoked") return;
        }
      } catch (e) {
        if (abort.signal.aborted) return;
        throw e;
      }
    });

  dataPlaneCommands(cmd, connect, out, err);

  cmd
    .command("completion")
    .description("print a shell completion script: source <(agentry completion bash)")
    .argument("<shell>", SHELLS.join(", "))
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell))
        throw new UsageError(`shell must be one of ${SHELLS.join(", ")}`);
      print(completionScript(shell as (typeof SHELLS)[number], KINDS));
    });

  const config = cmd.command("config").description("the config file's contexts");
  config
    .command("set-context")
    .description("add or change a context (and make it current with --use)")
    .argument("<name>")
    .option("--server <url>", "gateway URL")
    .option("--bearer-token <token>", "bearer token")
    .option("--token-file <path>", "file holding the bearer token")
    .option("--default-namespace <ns>", "namespace")
    .option("--use", "make it the current context")
    .action(
      (
        name: string,
        o: {
          server?: string;
          bearerToken?: string;
          tokenFile?: string;
          defaultNamespace?: string;
          use?: boolean;
        },
      ) => {
        const path = configPath(flags());
        const file = readConfig(path);
        const contexts = file.contexts ?? [];
        const ctx = contexts.find((c) => c.name === name) ?? { name };
        if (!contexts.includes(ctx)) contexts.push(ctx);
        if (o.server) ctx.gateway = o.server;
        if (o.bearerToken) ctx.token = o.bearerToken;
        if (o.tokenFile) ctx.tokenFile = o.tokenFile;
        if (o.defaultNamespace) ctx.namespace = o.defaultNamespace;
        writeConfig(path, { ...file, contexts, ...(o.use ? { "current-context": name } : {}) });
        print(`context ${name} written to ${path}`);
      },
    );
  config
    .command("use-context")
    .argument("<name>")
    .action((name: string) => {
      const path = configPath(flags());
      const file = readConfig(path);
      if (!file.contexts?.some((c) => c.name === name))
        throw new UsageError(`context "${name}" is not in ${path}`);
      writeConfig(path, { ...file, "current-context": name });
      print(`current context: ${name}`);
    });
  config
    .command("view")
    .description("the config file, tokens hidden")
    .action(() => {
      const file = readConfig(configPath(flags()));
      const shown = {
        ...file,
        contexts: file.contexts?.map((c) => (c.token ? { ...c, token: "REDACTED" } : c)),
      };
      print(yaml.dump(shown).trimEnd());
    });
  return cmd;
}

export async function main(argv = process.argv): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ExitCode) return e.code;
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ProblemError) {
      process.stderr.write(`Error from the gateway (${e.status}): ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`error: ${errorMessage(e)}\n`);
    return 1;
  }
}

// Run as a program (tsx, node dist/cli/main.js, or the `agentry` bin link), not when imported.
// import.meta.main is Node >= 24.2; the built CLI also runs on older Node.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : "";
if (invoked === fileURLToPath(import.meta.url)) process.exitCode = await main();
