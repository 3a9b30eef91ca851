// Directory listings, tar archives and byte ranges of the sandbox API, through the typed
// client against SandboxApp in process; archives are read back with the system's tar.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SandboxApiError } from "../../contracts/sandbox.client.ts";
import { SandboxClient } from "../../contracts/sandbox.client.ts";
import { startSandboxApp, type TestSandbox } from "../../test/harness/sandboxapp.ts";
import { parseRange } from "./browse.ts";
import type { WorkspaceStore } from "./workspaces.ts";

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe("parseRange", () => {
  const cases: [string | undefined, number, { start: number; end: number } | undefined | "416"][] = [
    [undefined, 10, undefined],
    ["bytes=0-3", 10, { start: 0, end: 3 }],
    ["bytes=5-", 10, { start: 5, end: 9 }],
    ["bytes=-4", 10, { start: 6, end: 9 }],
    ["bytes=-40", 10, { start: 0, end: 9 }],
    ["bytes=2-400", 10, { start: 2, end: 9 }],
    ["bytes=10-", 10, "416"],
    ["bytes=-0", 10, "416"],
    ["bytes=0-1,4-5", 10, undefined],
    ["items=0-1", 10, undefined],
    ["bytes=5-2", 10, undefined],
  ];
  for (const [header, size, want] of cases)
    it(`${header ?? "(none)"} of ${size} bytes`, () => {
      if (want === "416") assert.throws(() => parseRange(header, size), { status: 416 });
      else assert.deepEqual(parseRange(header, size), want);
    });
});

describe("sandbox directory routes", () => {
  let root: string;
  let sandbox: TestSandbox;
  let store: WorkspaceStore;
  let client: SandboxClient;
  before(async () => {
    sandbox = await startSandboxApp({ maxFileBytes: 1 << 20 });
    ({ root, store } = sandbox);
    const trust = sandbox.trust;
    await store.create("w", null);
    const ws = store.dir("w");
    await mkdir(join(ws, "src", "deep"), { recursive: true });
    await writeFile(join(ws, "src", "a.txt"), "alpha");
    await writeFile(join(ws, "src", "deep", "b.txt"), "0123456789");
    await writeFile(join(ws, "src", `${"long-name-".repeat(12)}.txt`), "long");
    await mkdir(join(root, "outside"));
    await writeFile(join(root, "outside", "secret"), "top secret");
    await symlink(join(root, "outside"), join(ws, "src", "escape"));
    await symlink(join(root, "outside"), join(ws, "link-dir"));
    client = new SandboxClient({
      baseUrl: sandbox.url(""),
      token: () => trust.token("workspace:w", ["files"]),
    });
  });
  after(() => sandbox.stop());

  it("lists a directory, symlinks as such", async () => {
    const top = await client.listDir("w");
    assert.deepEqual(
      top.entries.map((e) => [e.name, e.type]),
      [
        ["link-dir", "symlink"],
        ["src", "dir"],
      ],
    );
    const src = await client.listDir("w", "src/deep");
    assert.deepEqual(
      src.entries.map((e) => [e.name, e.type, e.size]),
      [["b.txt", "file", 10]],
    );
    assert.equal(src.path, "src/deep");
  });

  it("refuses to list outside the workspace, or what is missing", async () => {
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: SandboxApiError) => e.status,
      );
    assert.equal(await status(client.listDir("w", "link-dir")), 400);
    assert.equal(await status(client.listDir("w", "missing")), 404);
    assert.equal(await status(client.listDir("w", "src/a.txt")), 409, "a file, not a directory");
    assert.equal(await status(client.listDir("w", "../ws")), 400);
  });

  it("serves one range of a file", async () => {
    const part = await client.openFile("w", "src/deep/b.txt", { range: "bytes=2-5" });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), "bytes 2-5/10");
    assert.equal((await collect(part.body)).toString(), "2345");
    const whole = await client.openFile("w", "src/deep/b.txt");
    assert.equal(whole.status, 200);
    assert.equal((await collect(whole.body)).toString(), "0123456789");
    await assert.rejects(client.openFile("w", "src/deep/b.txt", { range: "bytes=20-" }), { status: 416 });
  });

  it("streams a directory as a tar that tar extracts, without following symlinks", async () => {
    const tar = await client.archive("w", "src");
    assert.equal(tar.status, 200);
    const file = join(root, "src.tar");
    await writeFile(file, await collect(tar.body));
    const out = join(root, "extracted");
    await mkdir(out);
    const r = spawnSync("tar", ["-xf", file, "-C", out], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await readFile(join(out, "a.txt"), "utf8"), "alpha");
    assert.equal(await readFile(join(out, "deep", "b.txt"), "utf8"), "0123456789");
    assert.equal(await readFile(join(out, `${"long-name-".repeat(12)}.txt`), "utf8"), "long");
    const listed = spawnSync("tar", ["-tf", file], { encoding: "utf8" }).stdout;
    assert.doesNotMatch(listed, /escape|secret/);
  });
});
