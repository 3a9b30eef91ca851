// A workspace's git source, cloned on its first placement: one ref, shallow, with the
// credentials (from the Workspace's Secret) given to git in its environment only — never in
// the URL, the repository's config, a log line or an error message.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GitCredentials {
  username?: string;
  password?: string;
  /** A bearer-style token (sent as the password of user `x-access-token` when no username is given). */
  token?: string;
}

export interface CloneRequest {
  url: string;
  /** Branch, tag or full commit id; default HEAD of the remote. */
  ref?: string;
  credentials?: GitCredentials;
  timeoutMs?: number;
  /** Largest checkout accepted, in bytes (files and .git together). */
  maxBytes?: number;
}

export class GitSourceError extends Error {
  /** A short machine-readable reason for the Workspace condition. */
  readonly reason: "InvalidURL" | "CloneFailed" | "RefNotFound" | "AuthFailed" | "TooLarge" | "Timeout";
  constructor(reason: GitSourceError["reason"], message: string) {
    super(message);
    this.reason = reason;
  }
}

const ALLOWED_SCHEMES = new Set(["https:", "http:", "ssh:", "git:"]);

/** Checks a source URL before anything is run: scheme, no credentials inside, a host. */
export function validateGitUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GitSourceError(
      "InvalidURL",
      `source.git.url is not a URL: ${JSON.stringify(url.slice(0, 200))}`,
    );
  }
  if (!ALLOWED_SCHEMES.has(u.protocol))
    throw new GitSourceError(
      "InvalidURL",
      `source.git.url must use https, http, ssh or git, not ${u.protocol}`,
    );
  if (u.password || (u.username && u.protocol !== "ssh:"))
    throw new GitSourceError(
      "InvalidURL",
      "source.git.url must not carry credentials: put them in the Secret",
    );
  if (!u.hostname) throw new GitSourceError("InvalidURL", "source.git.url has no host");
}

/** Clones `req.url` at `req.ref` into `dir` (created; must not exist or be empty). Returns the commit id. */
export async function cloneInto(dir: string, req: CloneRequest): Promise<{ commit: string }> {
  validateGitUrl(req.url);
  const ref = req.ref ?? "HEAD";
  if (!/^[A-Za-z0-9._/@{}^~-]{1,250}$/.test(ref) || ref.startsWith("-"))
    throw new GitSourceError(
      "RefNotFound",
      `source.git.ref ${JSON.stringify(ref.slice(0, 100))} is not a valid ref`,
    );
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw new GitSourceError("CloneFailed", "the workspace is not empty");
  const home = await mkdtemp(join(tmpdir(), "agentry-git-home-"));
  const deadline = Date.now() + (req.timeoutMs ?? 300_000);
  try {
    const env = gitEnv(home, req.credentials);
    const run = (args: string[]) => runGit(dir, args, env, deadline, req.credentials);
    await run(["init", "-q"]);
    await run(["remote", "add", "origin", req.url]);
    await run(["fetch", "-q", "--depth", "1", "--no-tags", "origin", ref]);
    await run(["checkout", "-q", "--detach", "FETCH_HEAD"]);
    const commit = (await run(["rev-parse", "HEAD"])).trim();
    if (req.maxBytes !== undefined) {
      const size = await du(dir);
      if (size > req.maxBytes)
        throw new GitSourceError(
          "TooLarge",
          `the checkout is ${size} bytes, over the limit of ${req.maxBytes}`,
        );
    }
    return { commit };
  } catch (err) {
    // Never leave half a clone behind: the next placement tries again from scratch.
    for (const entry of await readdir(dir).catch(() => []))
      await rm(join(dir, entry), { recursive: true, force: true });
    throw err;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

function gitEnv(home: string, creds: GitCredentials | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_ALLOW_PROTOCOL: "https:http:ssh:git",
    GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
  };
  const user = creds?.username ?? (creds?.token ? "x-access-token" : undefined);
  const pass = creds?.password ?? creds?.token;
  if (user !== undefined && pass !== undefined) {
    // An HTTP header given through the environment: not in argv (ps), not in .git/config.
    env.GIT_CONFIG_COUNT = "1";
    env.GIT_CONFIG_KEY_0 = "http.extraHeader";
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  }
  return env;
}

function runGit(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  deadline: number,
  creds: GitCredentials | undefined,
): Promise<string> {
  return new Promise((resolve, reject) => {
    // The workspace directory belongs to the workspace's user while the runtime (root) runs
    // git: this directory, made empty by us just before, is the one git may trust.
    const child = spawn("git", ["-c", `safe.directory=${cwd}`, ...args], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()).length > 1 << 20 && child.kill("SIGKILL"));
    child.stderr.on("data", (c: Buffer) => (err = (err + c.toString()).slice(-4096)));
    const timer = setTimeout(() => child.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new GitSourceError("CloneFailed", `cannot run git: ${e.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(out);
      if (signal === "SIGKILL" && Date.now() >= deadline)
        return reject(new GitSourceError("Timeout", `git ${args[0]} did not finish in time`));
      reject(classify(scrub(err, creds)));
    });
  });
}

/** git's error text with any credential removed. */
function scrub(text: string, creds: GitCredentials | undefined): string {
  let t = text;
  for (const secret of [creds?.password, creds?.token].filter((s): s is string => !!s && s.length >= 4))
    t = t.split(secret).join("***");
  return t
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .join("; ")
    .slice(0, 500);
}

function classify(text: string): GitSourceError {
  if (/Authentication failed|could not read Username|401|403/i.test(text))
    return new GitSourceError("AuthFailed", `git authentication failed (check the Secret): ${text}`);
  if (/couldn't find remote ref|not our ref|unadvertised object|invalid refspec/i.test(text))
    return new GitSourceError("RefNotFound", `ref not found in the repository: ${text}`);
  return new GitSourceError("CloneFailed", `git clone failed: ${text}`);
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
