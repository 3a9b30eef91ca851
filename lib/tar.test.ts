import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { extractTar, TAR_END, tarHeader, tarPadding, type TarEntry } from "./tar.ts";

const mtime = new Date("2026-12-01T12:00:00Z");
const dirs: string[] = [];
const scratch = async () => {
  const d = await mkdtemp(join(tmpdir(), "agentry-tar-"));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** An archive as the sandbox writes it. */
function archive(entries: { path: string; body?: string; mode?: number }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type: TarEntry["type"] = e.body === undefined ? "dir" : "file";
    const body = Buffer.from(e.body ?? "");
    parts.push(tarHeader({ path: e.path, type, size: body.length, mode: e.mode ?? 0o644, mtime }));
    if (type === "file") parts.push(body, tarPadding(body.length));
  }
  return Buffer.concat([...parts, TAR_END]);
}

/** The buffer in chunks of `size` bytes, as a network stream delivers it. */
function chunked(buf: Buffer, size: number): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

describe("extractTar", () => {
  const long = `${"deep/".repeat(25)}ünïcode file.txt`;
  for (const size of [1, 7, 512, 65536]) {
    it(`reads back what tarHeader writes (chunks of ${size} bytes)`, async () => {
      const dest = join(await scratch(), "out");
      const entries = await extractTar(
        chunked(
          archive([
            { path: "src", mode: 0o755 },
            { path: "src/a.txt", body: "hello\n" },
            { path: "run.sh", body: "#!/bin/sh\n", mode: 0o755 },
            { path: "empty", body: "" },
            { path: long, body: "x".repeat(1000) },
          ]),
          size,
        ),
        dest,
      );
      assert.deepEqual(
        entries.map((e) => [e.path, e.type, e.size]),
        [
          ["src", "dir", 0],
          ["src/a.txt", "file", 6],
          ["run.sh", "file", 10],
          ["empty", "file", 0],
          [long, "file", 1000],
        ],
      );
      assert.equal(await readFile(join(dest, "src", "a.txt"), "utf8"), "hello\n");
      assert.equal((await stat(join(dest, "run.sh"))).mode & 0o777, 0o755);
      assert.equal(await readFile(join(dest, "empty"), "utf8"), "");
      assert.equal((await readFile(join(dest, ...long.split("/")), "utf8")).length, 1000);
    });
  }

  it("reads GNU tar's archives, long names included", async () => {
    const src = await scratch();
    const longDir = join(src, "tree", ...Array.from({ length: 12 }, () => "directory"));
    await mkdir(longDir, { recursive: true });
    await writeFile(join(longDir, "f.txt"), "deep");
    await writeFile(join(src, "tree", "top.txt"), "top");
    const r = spawnSync("tar", ["-cf", "-", "-C", join(src, "tree"), "."], { maxBuffer: 1 << 24 });
    assert.equal(r.status, 0, r.stderr?.toString());
    const dest = join(await scratch(), "x");
    await extractTar(chunked(r.stdout, 300), dest);
    assert.equal(await readFile(join(dest, "top.txt"), "utf8"), "top");
    assert.equal(
      await readFile(join(dest, ...Array.from({ length: 12 }, () => "directory"), "f.txt"), "utf8"),
      "deep",
    );
  });

  it("refuses paths that lead out of the destination and archives that are not tar", async () => {
    for (const path of ["../evil", "a/../../evil", "/etc/evil"]) {
      const dest = join(await scratch(), "out");
      await assert.rejects(
        extractTar(chunked(archive([{ path, body: "x" }]), 512), dest),
        /leading out|absolute/,
      );
      assert.deepEqual(await readdir(dest), []);
    }
    await assert.rejects(
      extractTar(
        chunked(Buffer.from("<html>not tar</html>".padEnd(1024, " ")), 512),
        join(await scratch(), "o"),
      ),
      /not a tar archive/,
    );
    await assert.rejects(
      extractTar(
        chunked(archive([{ path: "f", body: "x".repeat(2000) }]).subarray(0, 1024), 512),
        join(await scratch(), "o"),
      ),
      /ends in the middle/,
    );
  });
});
