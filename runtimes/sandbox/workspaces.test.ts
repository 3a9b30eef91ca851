import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chown, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ProblemError } from "../../lib/http/problem.ts";
import { isInside, parseFilePath, validateWorkspaceId, WorkspaceStore } from "./workspaces.ts";

const status = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof ProblemError ? err.status : -1;
  }
  return 0;
};
const rejectsWith = async (status: number, promise: Promise<unknown>) =>
  assert.rejects(promise, (err: unknown) => err instanceof ProblemError && err.status === status);
const body = (text: string) => Readable.from([Buffer.from(text)]);

describe("parseFilePath", () => {
  const hostile: [string, string][] = [
    ["parent", "../x"],
    ["parent in the middle", "a/../../b"],
    ["parent at the end", "a/.."],
    ["absolute", "/etc/passwd"],
    ["encoded absolute", "%2Fetc%2Fpasswd"],
    ["NUL byte", "a\u0000b"],
    ["encoded NUL byte", "a%00b"],
    ["encoded traversal", "%2e%2e/x"],
    ["encoded traversal, upper case", "%2E%2E/%2E%2E/etc/passwd"],
    ["traversal with encoded slashes", "a%2F..%2F..%2Fb"],
    ["dot segment", "./a"],
    ["empty segment", "a//b"],
    ["trailing slash", "a/"],
    ["empty", ""],
    ["malformed encoding", "%zz"],
    ["segment too long", "x".repeat(256)],
  ];
  for (const [name, raw] of hostile)
    it(`refuses ${name}: ${JSON.stringify(raw)}`, () =>
      assert.equal(
        status(() => parseFilePath(raw)),
        400,
      ));

  const fine: [string, string[]][] = [
    ["a", ["a"]],
    ["dir/file.txt", ["dir", "file.txt"]],
    ["..a/a../.hidden", ["..a", "a..", ".hidden"]],
    ["with%20space", ["with space"]],
    ["%252e%252e", ["%2e%2e"]], // decoded once only: a literal file name
    ["caf%C3%A9", ["café"]],
  ];
  for (const [raw, segments] of fine)
    it(`accepts ${JSON.stringify(raw)}`, () => assert.deepEqual(parseFilePath(raw), segments));

  it("never yields a path that leaves the workspace (property)", () => {
    const base = "/workspaces/ns.a";
    const piece = fc.constantFrom("a", ".", "..", "/", "%2e", "%2E", "%2f", "%2F", "%00", "%", "\\", "b.");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        let segments: string[];
        try {
          segments = parseFilePath(pieces.join(""));
        } catch (err) {
          assert.ok(err instanceof ProblemError && err.status === 400);
          return;
        }
        const path = resolve(base, ...segments);
        assert.ok(isInside(base, path) && path !== base, `${pieces.join("")} -> ${path}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("validateWorkspaceId", () => {
  const table: [string, boolean][] = [
    ["ns.name", true],
    ["a", true],
    ["a-b.c-d", true],
    ["x".repeat(253), true],
    ["x".repeat(254), false],
    ["", false],
    ["A", false],
    [".hidden", false],
    ["a.", false],
    ["-a", false],
    ["a/b", false],
    ["a_b", false],
    ["..", false],
  ];
  for (const [id, ok] of table)
    it(`${ok ? "accepts" : "refuses"} ${JSON.stringify(id.slice(0, 20))}`, () =>
      assert.equal(
        status(() => validateWorkspaceId(id)),
        ok ? 0 : 400,
      ));
});

describe("WorkspaceStore", () => {
  let dir: string;
  let outside: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "agentry-ws-"));
    outside = join(dir, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "top secret");
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const open = (name: string, max = 4) => WorkspaceStore.open(join(dir, name), max);

  it("creates idempotently, counts towards the maximum, and survives a restart", async () => {
    const store = await open("idem", 2);
    const first = await store.create("ns.a", "bob");
    assert.equal(first.created, true);
    assert.equal(first.info.ownerId, "bob");
    const again = await store.create("ns.a", null);
    assert.deepEqual(again, { info: first.info, created: false });
    await store.create("ns.b", null);
    await rejectsWith(409, store.create("ns.c", null));
    assert.equal(store.count, 2);
    const reopened = await open("idem", 2);
    assert.deepEqual(reopened.list(), store.list());
  });

  it("refuses new workspaces but not existing ones when new ones are not allowed (draining)", async () => {
    const store = await open("drain");
    await store.create("ns.a", null);
    assert.equal((await store.create("ns.a", null, false)).created, false);
    await rejectsWith(503, store.create("ns.b", null, false));
  });

  it("keeps the maximum under concurrent creates", async () => {
    const store = await open("race", 3);
    const ids = Array.from({ length: 10 }, (_, i) => `ws${i}`);
    const results = await Promise.allSettled([...ids, ...ids].map((id) => store.create(id, null)));
    assert.equal(store.count, 3);
    assert.equal(results.filter((r) => r.status === "fulfilled" && r.value.created).length, 3);
  });

  it("deletes idempotently, removing the directory", async () => {
    const store = await open("delete");
    await store.create("ns.a", null);
    await store.writeFile("ns.a", ["d", "f"], body("x"), 100);
    await store.remove("ns.a");
    await store.remove("ns.a");
    assert.equal(store.get("ns.a"), undefined);
    assert.equal(existsSync(join(store.root, "ns.a")), false);
  });

  it("writes, replaces, reads and deletes files", async () => {
    const store = await open("files");
    await store.create("w", null);
    assert.deepEqual(await store.writeFile("w", ["a", "b", "c.txt"], body("one"), 100), { created: true });
    assert.deepEqual(await store.writeFile("w", ["a", "b", "c.txt"], body("two"), 100), { created: false });
    const { handle, size } = await store.openFile("w", ["a", "b", "c.txt"]);
    assert.equal(size, 3);
    assert.equal(await handle.readFile("utf8"), "two");
    await handle.close();
    await rejectsWith(404, store.openFile("w", ["missing"]));
    await rejectsWith(400, store.openFile("w", ["a"]));
    await rejectsWith(409, store.writeFile("w", ["a"], body("x"), 100));
    await rejectsWith(409, store.writeFile("w", ["a", "b", "c.txt", "d"], body("x"), 100));
    await rejectsWith(404, store.openFile("nope", ["x"]));
    await store.deleteFile("w", ["a"]);
    await store.deleteFile("w", ["a", "b", "c.txt"]);
    assert.equal(existsSync(join(store.root, "w", "a")), false);
  });

  it("refuses uploads over the limit and leaves nothing behind", async () => {
    const store = await open("limit");
    await store.create("w", null);
    await rejectsWith(
      413,
      store.writeFile("w", ["big"], Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), 100),
    );
    assert.equal(existsSync(join(store.root, "w", "big")), false);
  });

  it("cannot be led outside the workspace by symlinks an exec'd command planted", async () => {
    const store = await open("symlinks");
    await store.create("w", null);
    const ws = join(store.root, "w");
    await symlink(outside, join(ws, "dir-link"));
    await symlink(join(outside, "secret"), join(ws, "file-link"));
    await symlink("../../outside", join(ws, "relative-link"));
    await mkdir(join(ws, "inner"));
    await writeFile(join(ws, "inner", "ok.txt"), "fine");
    await symlink("inner", join(ws, "inside-link"));

    await rejectsWith(400, store.openFile("w", ["dir-link", "secret"]));
    await rejectsWith(400, store.openFile("w", ["file-link"]));
    await rejectsWith(400, store.openFile("w", ["relative-link", "secret"]));
    await rejectsWith(400, store.writeFile("w", ["dir-link", "new"], body("x"), 100));
    await rejectsWith(400, store.writeFile("w", ["dir-link", "secret"], body("pwned"), 100));
    await rejectsWith(400, store.writeFile("w", ["relative-link", "sub", "new"], body("x"), 100));
    await rejectsWith(400, store.deleteFile("w", ["dir-link", "secret"]));
    assert.equal(existsSync(join(outside, "new")), false);
    assert.equal(existsSync(join(outside, "sub")), false);
    assert.equal(await readFile(join(outside, "secret"), "utf8"), "top secret");

    // Writing to a symlink replaces the link itself, never the file it points to.
    await store.writeFile("w", ["file-link"], body("mine"), 100);
    assert.equal((await lstat(join(ws, "file-link"))).isFile(), true);
    assert.equal(await readFile(join(outside, "secret"), "utf8"), "top secret");
    // Deleting a symlink removes the link, not its target.
    await store.deleteFile("w", ["dir-link"]);
    assert.equal(existsSync(join(outside, "secret")), true);
    // Links that stay inside the workspace work.
    const { handle } = await store.openFile("w", ["inside-link", "ok.txt"]);
    assert.equal(await handle.readFile("utf8"), "fine");
    await handle.close();
  });

  it("refuses a workspace directory swapped for a symlink", async () => {
    const store = await open("swapped");
    await store.create("w", null);
    await rm(join(store.root, "w"), { recursive: true });
    await symlink(outside, join(store.root, "w"));
    assert.equal(await readlink(join(store.root, "w")), outside);
    await rejectsWith(500, store.openFile("w", ["secret"]));
    await rejectsWith(500, store.writeFile("w", ["x"], body("x"), 100));
    assert.equal(existsSync(join(outside, "x")), false);
  });

  it("resolves an exec's working directory inside the workspace only", async () => {
    const store = await open("cwd");
    await store.create("w", null);
    const ws = join(store.root, "w");
    await mkdir(join(ws, "src", "lib"), { recursive: true });
    await writeFile(join(ws, "file.txt"), "x");
    await symlink(outside, join(ws, "out-link"));
    await symlink("src", join(ws, "src-link"));
    assert.equal(await store.workingDir("w"), ws);
    assert.equal(await store.workingDir("w", "src/lib"), join(ws, "src", "lib"));
    assert.equal(await store.workingDir("w", "src-link/lib"), join(ws, "src", "lib"));
    const refused: [string, RegExp][] = [
      ["out-link", /outside the workspace/],
      ["../x", /".."/],
      ["src/../..", /".."/],
      ["/tmp", /relative/],
      [".", /"\."/],
      ["src//lib", /empty/],
      ["a\u0000b", /NUL/],
    ];
    for (const [cwd, message] of refused)
      await assert.rejects(
        store.workingDir("w", cwd),
        (err: unknown) => err instanceof ProblemError && err.status === 400 && message.test(err.message),
        cwd,
      );
    // What the workspace holds, not the request, is in the way: 409.
    const conflicts: [string, RegExp][] = [
      ["missing", /does not exist/],
      ["file.txt", /not a directory/],
      ["file.txt/x", /does not exist/],
    ];
    for (const [cwd, message] of conflicts)
      await assert.rejects(
        store.workingDir("w", cwd),
        (err: unknown) => err instanceof ProblemError && err.status === 409 && message.test(err.message),
        cwd,
      );
    await rejectsWith(404, store.workingDir("nope", "src"));
  });

  it("has no workspace users unless given ids", async () => {
    const store = await open("no-ids");
    await store.create("w", null);
    assert.equal(store.user("w"), undefined);
  });

  const root = process.getuid?.() === 0;
  it("gives each workspace its own user, directory mode and files (root only)", { skip: !root }, async () => {
    const ids = { uid: 41000, gid: 42000 };
    const store = await WorkspaceStore.open(join(dir, "users"), 4, ids);
    await store.create("a", null);
    await store.create("b", null);
    assert.deepEqual(
      [store.user("a"), store.user("b")],
      [
        { uid: 41000, gid: 42000 },
        { uid: 41001, gid: 42001 },
      ],
    );
    const mode = async (path: string) => (await lstat(path)).mode & 0o777;
    const owner = async (path: string) => {
      const st = await lstat(path);
      return [st.uid, st.gid];
    };
    assert.equal(await mode(store.root), 0o711);
    assert.equal(await mode(join(store.root, ".meta")), 0o700);
    assert.equal(await mode(join(store.root, ".tmp")), 0o700);
    assert.equal(await mode(join(store.root, "b")), 0o700);
    assert.deepEqual(await owner(join(store.root, "b")), [41001, 42001]);
    await store.writeFile("b", ["d", "e", "f.txt"], body("x"), 100);
    for (const path of ["d", "d/e", "d/e/f.txt"])
      assert.deepEqual(await owner(join(store.root, "b", path)), [41001, 42001]);

    // A freed slot is taken again; slots survive a restart, and a tree left by an older
    // runtime (directory and files its own) is handed over.
    await store.remove("a");
    await store.create("c", null);
    assert.deepEqual(store.user("c"), { uid: 41000, gid: 42000 });
    await writeFile(join(store.root, "b", "made-by-root"), "x");
    await chown(join(store.root, "b"), 0, 0);
    const reopened = await WorkspaceStore.open(join(dir, "users"), 4, ids);
    assert.deepEqual([reopened.user("b"), reopened.user("c")], [store.user("b"), store.user("c")]);
    assert.deepEqual(await owner(join(store.root, "b", "made-by-root")), [41001, 42001]);
  });
});
