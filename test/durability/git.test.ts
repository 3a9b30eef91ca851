// Workspace git sources (runtimes/sandbox/gitsource.ts) against a real git server on loopback
// (git http-backend): a branch, a tag and a commit id; credentials that work and that do
// not (never echoed); refs and URLs that are wrong; the loopback rule; the size bound.
import assert from "node:assert/strict";
import { chown, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cloneInto, GitSourceError, validateGitUrl } from "../../runtimes/sandbox/gitsource.ts";
import { startGitServer, type GitServer } from "../harness/git.ts";
import { inLoopbackNetns } from "../harness/netns.ts";

let open: GitServer;
let locked: GitServer;
let tmp: string;
let ids: string[];
const AUTH = { user: "alice", password: "s3cret-pass-word" };
const dir = () => mkdtemp(join(tmp, "ws-"));

async function fails(p: Promise<unknown>, reason: GitSourceError["reason"], message: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GitSourceError, String(err));
    assert.equal(err.reason, reason, err.message);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, new RegExp(AUTH.password), "the password never appears");
    return true;
  });
}

describe("workspace git source", () => {
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "agentry-gitsrc-"));
    open = await startGitServer();
    locked = await startGitServer({ auth: AUTH });
    const commits: { files: Record<string, string>; tag?: string; branch?: string }[] = [
      { files: { "README.md": "v1\n" }, tag: "v1.0.0" },
      { files: { "README.md": "v2\n", "src/app.ts": "export {};\n" } },
      { files: { "README.md": "feature\n" }, branch: "feature" },
    ];
    ids = await open.createRepo("app", commits);
    await locked.createRepo("private", [{ files: { "secret.txt": "only for alice\n" } }]);
  });
  after(async () => {
    await open?.stop();
    await locked?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it(
    "clones into a directory that belongs to the workspace's user (runtime as root)",
    { skip: process.getuid?.() !== 0 && "needs root" },
    async () => {
      const d = await dir();
      await chown(d, 41000, 41000);
      const { commit } = await cloneInto(d, { url: `${open.url}/app.git`, ref: "v1.0.0" });
      assert.equal(commit, ids[0]);
      assert.equal(await readFile(join(d, "README.md"), "utf8"), "v1\n");
    },
  );

  it("clones a branch, a tag and a commit id, recording the commit", async () => {
    for (const [ref, want, readme] of [
      ["main", ids[1], "v2\n"],
      ["v1.0.0", ids[0], "v1\n"],
      ["feature", ids[2], "feature\n"],
      [ids[0]!, ids[0], "v1\n"],
    ] as const) {
      const d = await dir();
      const { commit } = await cloneInto(d, { url: `${open.url}/app.git`, ref });
      assert.equal(commit, want, ref);
      assert.equal(await readFile(join(d, "README.md"), "utf8"), readme, ref);
    }
  });

  it("uses the Secret's credentials without leaving them in the checkout", async () => {
    const d = await dir();
    await cloneInto(d, {
      url: `${locked.url}/private.git`,
      ref: "main",
      credentials: { username: "alice", password: AUTH.password },
    });
    assert.equal(await readFile(join(d, "secret.txt"), "utf8"), "only for alice\n");
    assert.ok(locked.requests.some((r) => r.user === "alice"));
    const config = await readFile(join(d, ".git", "config"), "utf8");
    assert.doesNotMatch(config, /s3cret|Authorization|alice/);
  });

  it("fails clearly, and leaves nothing half-cloned", async () => {
    const d = await dir();
    await fails(
      cloneInto(d, {
        url: `${locked.url}/private.git`,
        credentials: { username: "alice", password: "wrong-password" },
      }),
      "AuthFailed",
      /authentication failed/,
    );
    assert.deepEqual(await readdir(d), []);
    await fails(
      cloneInto(await dir(), { url: `${locked.url}/private.git` }),
      "AuthFailed",
      /authentication failed/,
    );
    await fails(
      cloneInto(await dir(), { url: `${open.url}/app.git`, ref: "no-such-branch" }),
      "RefNotFound",
      /ref not found/,
    );
    await fails(
      cloneInto(await dir(), { url: `${open.url}/missing.git` }),
      "CloneFailed",
      /git clone failed/,
    );
    await fails(
      cloneInto(await dir(), { url: `${open.url}/app.git`, ref: "--upload-pack=evil" }),
      "RefNotFound",
      /not a valid ref/,
    );
    await fails(
      cloneInto(await dir(), { url: `${open.url}/app.git`, maxBytes: 10 }),
      "TooLarge",
      /over the limit of 10/,
    );
  });

  it("refuses URLs with credentials, local paths and other schemes before running git", () => {
    for (const [url, msg] of [
      ["https://alice:pw@example.com/x.git", /must not carry credentials/],
      ["file:///etc", /must use https, http, ssh or git/],
      ["ext::sh -c touch% /tmp/pwned", /not a URL|must use/],
      ["not a url", /not a URL/],
    ] as const)
      assert.throws(() => validateGitUrl(url), msg);
  });

  it(
    "cannot reach a host off loopback (the loopback-only namespace)",
    { skip: !inLoopbackNetns() && "not in the loopback-only namespace" },
    async () => {
      await fails(
        cloneInto(await dir(), { url: "http://192.0.2.10/repo.git", timeoutMs: 20_000 }),
        "CloneFailed",
        /git clone failed/,
      );
    },
  );
});
