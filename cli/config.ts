// Where the CLI finds its gateway: flags, then the environment (AGENTRY_GATEWAY_URL,
// AGENTRY_TOKEN, AGENTRY_NAMESPACE), then the current context of a kubeconfig-like file
// (AGENTRY_CONFIG, else ~/.agentry/config):
//
//   current-context: dev
//   contexts:
//     - name: dev
//       gateway: http://localhost:8080
//       token: ...            # or tokenFile: /path/to/token
//       namespace: default
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import * as yaml from "js-yaml";

export interface Context {
  name: string;
  gateway?: string;
  token?: string;
  tokenFile?: string;
  namespace?: string;
}

export interface ConfigFile {
  "current-context"?: string;
  contexts?: Context[];
}

export interface Settings {
  gateway: string;
  token: string | undefined;
  namespace: string;
}

export interface GlobalFlags {
  gateway?: string;
  token?: string;
  namespace?: string;
  context?: string;
  config?: string;
}

export class UsageError extends Error {}

export const configPath = (flags: GlobalFlags, env = process.env): string =>
  flags.config ?? env.AGENTRY_CONFIG ?? join(homedir(), ".agentry", "config");

export function readConfig(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  const parsed = yaml.load(text);
  if (parsed === undefined || parsed === null) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError(`${path}: not a config file`);
  return parsed;
}

export function writeConfig(path: string, config: ConfigFile): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, yaml.dump(config), { mode: 0o600 });
}

export function resolveSettings(flags: GlobalFlags, env = process.env): Settings {
  const path = configPath(flags, env);
  const file = readConfig(path);
  const name = flags.context ?? file["current-context"];
  const ctx = name ? file.contexts?.find((c) => c.name === name) : undefined;
  if (flags.context && !ctx) throw new UsageError(`context "${flags.context}" is not in ${path}`);
  let token = flags.token ?? env.AGENTRY_TOKEN ?? ctx?.token;
  if (token === undefined && ctx?.tokenFile) token = readFileSync(ctx.tokenFile, "utf8").trim();
  const gateway = flags.gateway ?? env.AGENTRY_GATEWAY_URL ?? ctx?.gateway;
  if (!gateway)
    throw new UsageError(
      `no gateway: pass --gateway, set AGENTRY_GATEWAY_URL, or add a context to ${path} (agentry config set-context)`,
    );
  return {
    gateway,
    token,
    namespace: flags.namespace ?? env.AGENTRY_NAMESPACE ?? ctx?.namespace ?? "default",
  };
}
