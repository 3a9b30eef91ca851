// Reading a workspace as a tree: list one directory, stream a directory as a tar archive, and
// serve a byte range of a file. Paths are checked as for every file route (workspaces.ts):
// relative segments only, every directory's real path inside the workspace. Symbolic links
// are listed as such and never followed: an archive leaves them out.
import { constants } from "node:fs";
import { lstat, open, readdir, realpath } from "node:fs/promises";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import type { DirEntry, DirListing } from "../../contracts/sandbox.ts";
import { writeChunk } from "../../lib/http/body.ts";
import { errorCode, notFound, ProblemError } from "../../lib/http/problem.ts";
import { TAR_END, tarHeader, tarPadding } from "../../lib/tar.ts";
import { isInside, type WorkspaceStore } from "./workspaces.ts";

/** Entries a listing returns at most; beyond it the listing says `truncated`. */
export const MAX_LISTING = 10_000;

const typeOf = (st: Awaited<ReturnType<typeof lstat>>): DirEntry["type"] =>
  st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other";

const missingDir = (segments: string[]) => (why: string) =>
  why.startsWith("does not exist")
    ? notFound(`directory "${segments.join("/") || "."}" ${why}`)
    : // A file where a directory is asked for: the workspace's state, not the request, is in the way.
      new ProblemError(why === "is not a directory" ? 409 : 400, `"${segments.join("/")}" ${why}`);

/** The entries of one directory of the workspace, sorted by name. */
export async function listDirectory(
  store: WorkspaceStore,
  id: string,
  segments: string[],
): Promise<DirListing> {
  const dir = await store.directory(id, segments, missingDir(segments));
  const names = (await readdir(dir)).sort();
  const entries: DirEntry[] = [];
  for (const name of names.slice(0, MAX_LISTING)) {
    const st = await lstat(join(dir, name)).catch(() => undefined);
    if (!st) continue; // gone since readdir
    entries.push({
      name,
      type: typeOf(st),
      size: st.isFile() ? st.size : 0,
      mode: st.mode & 0o7777,
      modifiedAt: st.mtime.toISOString(),
    });
  }
  return { path: segments.join("/"), entries, truncated: names.length > MAX_LISTING };
}

/**
 * Writes the directory (and everything below it that is a real file or directory) to `res`
 * as a tar stream. Paths in the archive are relative to the directory. Stops when the client
 * goes away.
 */
export async function writeArchive(
  store: WorkspaceStore,
  id: string,
  segments: string[],
  res: ServerResponse,
): Promise<void> {
  const base = await store.directory(id, [], missingDir([]));
  const top = await store.directory(id, segments, missingDir(segments));
  const name = segments.at(-1) ?? id;
  res.writeHead(200, {
    "content-type": "application/x-tar",
    "content-disposition": `attachment; filename="${name.replace(/[^\w.-]/g, "_")}.tar"`,
    "cache-control": "no-store",
  });
  const write = async (chunk: Buffer) => {
    if (res.destroyed) throw new Error("the client went away");
    await writeChunk(res, chunk);
  };
  const walk = async (dir: string, prefix: string): Promise<void> => {
    // The directory may have been swapped for a symlink since it was listed.
    const real = await realpath(dir).catch(() => undefined);
    if (!real || !isInside(base, real)) return;
    for (const entry of (await readdir(real).catch(() => [])).sort()) {
      const path = join(real, entry);
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      const rel = prefix ? `${prefix}/${entry}` : entry;
      if (st.isDirectory()) {
        await write(tarHeader({ path: rel, type: "dir", size: 0, mode: st.mode, mtime: st.mtime }));
        await walk(path, rel);
      } else if (st.isFile()) await writeFile(path, rel, write);
    }
  };
  try {
    await walk(top, "");
    await write(TAR_END);
    res.end();
  } catch {
    res.destroy();
  }
}

/** One file into the archive: exactly the size its header says, even if it changes meanwhile. */
async function writeFile(path: string, rel: string, write: (b: Buffer) => Promise<void>): Promise<void> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errorCode(err) === "ELOOP" || errorCode(err) === "ENOENT") return; // now a symlink, or gone
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return;
    await write(tarHeader({ path: rel, type: "file", size: st.size, mode: st.mode, mtime: st.mtime }));
    let left = st.size;
    const buf = Buffer.alloc(64 * 1024);
    while (left > 0) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, left), null);
      if (bytesRead === 0) break;
      await write(Buffer.from(buf.subarray(0, bytesRead)));
      left -= bytesRead;
    }
    if (left > 0) await write(Buffer.alloc(left)); // the file shrank: keep the header's size
    await write(tarPadding(st.size));
  } finally {
    await handle.close();
  }
}

/** A single byte range of a `size`-byte file from a Range header; undefined: the whole file. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // several ranges or another unit: ignored
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== "" && Number(m[2]) < start) return undefined; // invalid: ignored (RFC 9110)
  }
  if (start >= size) throw unsatisfiable(size);
  return { start, end };
}

const unsatisfiable = (size: number) =>
  new ProblemError(416, `the range is outside the file (${size} bytes)`, {
    "content-range": `bytes */${size}`,
  });
