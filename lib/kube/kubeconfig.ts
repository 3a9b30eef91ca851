// Where the apiserver is and how to prove who we are, from a kubeconfig file or the
// in-cluster ServiceAccount, as kubectl finds them: $KUBECONFIG (files merged, the first
// file that names something wins), else ~/.kube/config, else the Pod's ServiceAccount.
// Supports what clusters hand out today: a CA, client certificates, bearer tokens (inline
// or a token file, re-read as it rotates), basic auth and exec credential plugins. The
// programs load only this and node's own http/https (@kubernetes/client-node brings its
// generated API model, ~80 MiB of resident memory, for the same job).
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { load as parseYaml } from "js-yaml";

/** TLS settings of the connection to the apiserver. */
export interface KubeTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false with insecure-skip-tls-verify. */
  rejectUnauthorized: boolean;
  servername?: string;
}

interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  apiVersion?: string;
}

/** What a kubeconfig (or the in-cluster setup) says about one context. */
export interface KubeAccess {
  server: string;
  tls: KubeTls;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  exec?: ExecConfig;
  /** The context's namespace, if it names one. */
  namespace?: string;
}

type Raw = Record<string, unknown>;

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How long a token read from a file is used before the file is read again (it rotates). */
const TOKEN_FILE_TTL_MS = 60_000;

export class KubeConfig {
  readonly server: string;
  readonly tls: KubeTls;
  readonly namespace: string | undefined;
  private readonly access: KubeAccess;
  private fileToken: { value: string; readAt: number } | undefined;
  private execToken: { value: string; expires: number } | undefined;

  constructor(access: KubeAccess) {
    this.access = access;
    this.server = access.server.replace(/\/$/, "");
    this.tls = access.tls;
    this.namespace = access.namespace;
  }

  /** $KUBECONFIG, else ~/.kube/config, else the in-cluster ServiceAccount (as kubectl). */
  static fromDefault(env: NodeJS.ProcessEnv = process.env): KubeConfig {
    const files = (env.KUBECONFIG ?? "").split(":").filter((f) => f && existsSync(f));
    if (files.length) return KubeConfig.fromFiles(files);
    const home = join(env.HOME ?? homedir(), ".kube", "config");
    if (existsSync(home)) return KubeConfig.fromFiles([home]);
    if (env.KUBERNETES_SERVICE_HOST) return KubeConfig.inCluster(env);
    throw new Error(
      "no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, or run in a cluster (KUBERNETES_SERVICE_HOST)",
    );
  }

  /** The merged kubeconfig files' current context (or `context`). */
  static fromFiles(files: string[], context?: string): KubeConfig {
    const docs = files.map((f) => ({ dir: dirname(f), doc: parseKubeconfig(readFileSync(f, "utf8"), f) }));
    return KubeConfig.fromDocuments(docs, context);
  }

  /** A kubeconfig given as YAML or JSON text; relative paths are read against `baseDir`. */
  static fromYaml(text: string, baseDir = process.cwd(), context?: string): KubeConfig {
    return KubeConfig.fromDocuments(
      [{ dir: baseDir, doc: parseKubeconfig(text, "the kubeconfig") }],
      context,
    );
  }

  /** The Pod's ServiceAccount token and CA, and the apiserver the cluster's environment names. */
  static inCluster(env: NodeJS.ProcessEnv = process.env, dir = SA_DIR): KubeConfig {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? "443";
    if (!host) throw new Error("not in a cluster: KUBERNETES_SERVICE_HOST is not set");
    const namespaceFile = join(dir, "namespace");
    return new KubeConfig({
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      tls: { ca: readFileSync(join(dir, "ca.crt")), rejectUnauthorized: true },
      tokenFile: join(dir, "token"),
      ...(existsSync(namespaceFile) ? { namespace: readFileSync(namespaceFile, "utf8").trim() } : {}),
    });
  }

  private static fromDocuments(docs: { dir: string; doc: Raw }[], wanted?: string): KubeConfig {
    const pick = <T>(list: string): Map<string, { dir: string; value: T }> => {
      const out = new Map<string, { dir: string; value: T }>();
      for (const { dir, doc } of docs)
        for (const item of (doc[list] as ({ name: string } & Raw)[] | undefined) ?? []) {
          const value = item[list.slice(0, -1)] as T;
          if (!out.has(item.name)) out.set(item.name, { dir, value });
        }
      return out;
    };
    const contexts = pick<Raw>("contexts");
    const clusters = pick<Raw>("clusters");
    const users = pick<Raw>("users");
    const current = wanted ?? docs.map((d) => d.doc["current-context"] as string | undefined).find(Boolean);
    if (!current) throw new Error("the kubeconfig names no current-context");
    const ctx = contexts.get(current)?.value;
    if (!ctx) throw new Error(`the kubeconfig has no context ${current}`);
    const cluster = clusters.get(ctx["cluster"] as string);
    if (!cluster) throw new Error(`the kubeconfig's context ${current} names no known cluster`);
    const user = users.get(ctx["user"] as string);
    const c = cluster.value;
    const u = user?.value ?? {};
    const server = c["server"] as string | undefined;
    if (!server) throw new Error(`the kubeconfig's cluster ${ctx["cluster"] as string} has no server`);
    if (u["auth-provider"])
      throw new Error(
        `the kubeconfig's user uses auth-provider ${(u["auth-provider"] as Raw)["name"] as string}, which agentry does not support; use a token, a client certificate or an exec plugin`,
      );
    const tls: KubeTls = {
      rejectUnauthorized: c["insecure-skip-tls-verify"] !== true,
      ...optional("ca", dataOrFile(c, "certificate-authority", cluster.dir)),
      ...optional("cert", dataOrFile(u, "client-certificate", user?.dir ?? "")),
      ...optional("key", dataOrFile(u, "client-key", user?.dir ?? "")),
      ...optional("servername", c["tls-server-name"] as string | undefined),
    };
    const tokenFile = u["tokenFile"] as string | undefined;
    return new KubeConfig({
      server,
      tls,
      ...optional("token", u["token"] as string | undefined),
      ...optional("tokenFile", tokenFile && user ? resolvePath(tokenFile, user.dir) : undefined),
      ...optional("username", u["username"] as string | undefined),
      ...optional("password", u["password"] as string | undefined),
      ...optional("exec", u["exec"] as ExecConfig | undefined),
      ...optional("namespace", ctx["namespace"] as string | undefined),
    });
  }

  /** The Authorization header for the next request, if any. */
  async authorization(now = Date.now()): Promise<string | undefined> {
    const a = this.access;
    if (a.token) return `Bearer ${a.token}`;
    if (a.tokenFile) {
      if (!this.fileToken || now - this.fileToken.readAt > TOKEN_FILE_TTL_MS)
        this.fileToken = { value: readFileSync(a.tokenFile, "utf8").trim(), readAt: now };
      return `Bearer ${this.fileToken.value}`;
    }
    if (a.exec) {
      if (!this.execToken || now >= this.execToken.expires) this.execToken = await runExec(a.exec, now);
      return `Bearer ${this.execToken.value}`;
    }
    if (a.username !== undefined)
      return `Basic ${Buffer.from(`${a.username}:${a.password ?? ""}`).toString("base64")}`;
    return undefined;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
}

function parseKubeconfig(text: string, where: string): Raw {
  const doc = parseYaml(text);
  if (!doc || typeof doc !== "object") throw new Error(`${where} is not a kubeconfig`);
  return doc as Raw;
}

const resolvePath = (p: string, dir: string) => (isAbsolute(p) ? p : join(dir, p));

/** `<field>-data` (base64) or the file `<field>` names (relative to the kubeconfig's folder). */
function dataOrFile(section: Raw, field: string, dir: string): Buffer | undefined {
  const data = section[`${field}-data`] as string | undefined;
  if (data) return Buffer.from(data, "base64");
  const file = section[field] as string | undefined;
  return file ? readFileSync(resolvePath(file, dir)) : undefined;
}

/** Runs an exec credential plugin; its token is used until it expires (or for a minute). */
function runExec(exec: ExecConfig, now: number): Promise<{ value: string; expires: number }> {
  const env = { ...process.env };
  for (const e of exec.env ?? []) env[e.name] = e.value;
  env["KUBERNETES_EXEC_INFO"] = JSON.stringify({
    apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    spec: { interactive: false },
  });
  return new Promise((resolve, reject) => {
    execFile(exec.command, exec.args ?? [], { env, timeout: 60_000 }, (err, stdout) => {
      if (err)
        return reject(new Error(`the kubeconfig's exec plugin ${exec.command} failed: ${err.message}`));
      try {
        const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string } })
          .status;
        if (!status?.token)
          throw new Error("it returned no status.token (client certificates are not supported)");
        const expires = status.expirationTimestamp
          ? Date.parse(status.expirationTimestamp) - 10_000
          : now + 60_000;
        resolve({ value: status.token, expires });
      } catch (e) {
        reject(new Error(`the kubeconfig's exec plugin ${exec.command}: ${(e as Error).message}`));
      }
    });
  });
}
