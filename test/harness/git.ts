// A real git server on loopback for the tests: Git's own smart-HTTP CGI (`git http-backend`,
// Debian's git) behind a small Node HTTP server, optionally behind basic auth, serving
// repositories the test makes with real commits.
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";

export interface GitServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Makes a bare repository `name` with one commit per entry (files of that commit), tagging as asked; returns commit ids. */
  createRepo(
    name: string,
    commits: { files: Record<string, string>; tag?: string; branch?: string }[],
  ): Promise<string[]>;
  /** Requests served, for asserting who fetched what. */
  requests: { path: string; user?: string }[];
  stop(): Promise<void>;
}

const GIT_ENV = {
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "agentry test",
  GIT_AUTHOR_EMAIL: "test@agentry.invalid",
  GIT_COMMITTER_NAME: "agentry test",
  GIT_COMMITTER_EMAIL: "test@agentry.invalid",
};

function git(cwd: string, args: string[], home: string): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: home, ...GIT_ENV },
  }).trim();
}

export async function startGitServer(
  options: { auth?: { user: string; password: string } } = {},
): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), "agentry-git-"));
  const repos = join(root, "repos");
  await mkdir(repos);
  const requests: { path: string; user?: string }[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    let user: string | undefined;
    if (options.auth) {
      const m = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
      const [u, p] = m ? Buffer.from(m[1]!, "base64").toString().split(":") : [];
      if (u !== options.auth.user || p !== options.auth.password) {
        requests.push({ path: url.pathname });
        res.writeHead(401, { "www-authenticate": 'Basic realm="agentry-test-git"' }).end();
        return;
      }
      user = u;
    }
    requests.push({ path: url.pathname, ...(user ? { user } : {}) });
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: repos,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        ...(req.headers["content-encoding"]
          ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] }
          : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
        REMOTE_ADDR: "127.0.0.1",
        ...(user ? { REMOTE_USER: user } : {}),
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    req.pipe(cgi.stdin);
    // CGI answer: headers, a blank line, the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split("\r\n")) {
        const i = line.indexOf(":");
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.once("close", () => {
      if (!headersDone) res.writeHead(500);
      res.end();
    });
  };
  const server = createServer(handle);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async createRepo(name, commits) {
      const work = await mkdtemp(join(root, "work-"));
      git(work, ["init", "-q", "-b", "main"], root);
      const ids: string[] = [];
      for (const c of commits) {
        if (c.branch) git(work, ["checkout", "-q", "-B", c.branch], root);
        for (const [path, content] of Object.entries(c.files)) {
          await mkdir(join(work, path, ".."), { recursive: true });
          await writeFile(join(work, path), content);
        }
        git(work, ["add", "-A"], root);
        git(work, ["commit", "-q", "-m", `commit ${ids.length + 1}`], root);
        ids.push(git(work, ["rev-parse", "HEAD"], root));
        if (c.tag) git(work, ["tag", c.tag], root);
      }
      const bare = join(repos, `${name}.git`);
      git(root, ["clone", "-q", "--bare", work, bare], root);
      git(bare, ["config", "http.receivepack", "false"], root);
      git(bare, ["config", "uploadpack.allowReachableSHA1InWant", "true"], root);
      return ids;
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
