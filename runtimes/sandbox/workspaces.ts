// Workspace directories under the sandbox root and safe access to the files inside them.
//
// Layout: <root>/<id>/ is a workspace (ids never start with "."), <root>/.meta/<id>.json
// its metadata, <root>/.tmp/ holds uploads until they are renamed into place.
//
// Path safety: a file path from a request is percent-decoded once and split into
// segments; absolute paths, "..", ".", empty segments and NUL bytes are refused outright.
// What remains is resolved against the real file system: every directory on the way must
// really (after following symlinks) be inside the workspace, reads check the opened file
// descriptor's real path, and uploads are renamed over the final entry (replacing a
// symlink rather than writing through it) — so a symlink planted by an exec'd command
// cannot lead outside the workspace. An exec's working directory is checked the same way.
//
// Users: when the runtime runs as root it is given a range of ids, and each workspace gets
// its own uid and gid (first id + its slot, 0..maxWorkspaces-1, kept in its metadata): the
// workspace directory is theirs with mode 0700, files the runtime writes into it are
// handed to them, the root is 0711 and .meta and .tmp 0700. Commands of one workspace then
// cannot read another's files. Without ids (a non-root runtime) every workspace belongs to
// the runtime's own user.
import { randomUUID } from "node:crypto";
import { constants, createWriteStream } from "node:fs";
import {
  chmod,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { relativePathProblem, WORKSPACE_ID, type WorkspaceInfo } from "../../contracts/sandbox.ts";
import { badRequest, conflict, errorCode, notFound, ProblemError } from "../../lib/http/problem.ts";

/** Turns the percent-encoded path after /files/ into safe relative segments, or throws 400. */
export function parseFilePath(raw: string): string[] {
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    throw badRequest("file path is not valid percent-encoding");
  }
  if (path === "") throw badRequest("file path is empty: use /workspaces/{id}/files/{path}");
  return relativeSegments(path, "file path");
}

/**
 * Splits a path relative to the workspace into segments, or throws 400: no NUL, not
 * absolute, no "..", "." or empty segments, within the length limits.
 */
export function relativeSegments(path: string, what: string): string[] {
  const problem = relativePathProblem(path, what);
  if (problem) throw badRequest(problem);
  return path.split("/");
}

/** True when `path` is `base` itself or lies below it. Both must be absolute and normalised. */
export function isInside(base: string, path: string): boolean {
  return path === base || path.startsWith(base + sep);
}

export function validateWorkspaceId(id: string): void {
  if (!WORKSPACE_ID.test(id))
    throw badRequest(
      `workspace id "${id.slice(0, 64)}" is invalid: use lowercase letters, digits, "-" and "." (1-253 characters, starting and ending with a letter or digit)`,
    );
}

const outside = () => badRequest("file path resolves outside the workspace");

/** First uid and gid of the range the workspaces' users are taken from (root runtime only). */
export interface WorkspaceIds {
  uid: number;
  gid: number;
}

export class WorkspaceStore {
  /** The real path of the root directory. */
  readonly root: string;
  readonly maxWorkspaces: number;
  /** Set when each workspace has a user of its own. */
  readonly ids: WorkspaceIds | undefined;
  private readonly items = new Map<string, WorkspaceInfo>();
  private readonly slots = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly locks = new Map<string, Promise<unknown>>();

  private constructor(root: string, maxWorkspaces: number, ids: WorkspaceIds | undefined) {
    this.root = root;
    this.maxWorkspaces = maxWorkspaces;
    this.ids = ids;
  }

  /**
   * Creates the root if missing and loads the workspaces already in it. With `ids`, gives
   * each workspace its user (slots kept from the metadata) and fixes ownership and modes.
   */
  static async open(root: string, maxWorkspaces: number, ids?: WorkspaceIds): Promise<WorkspaceStore> {
    await mkdir(root, { recursive: true });
    const store = new WorkspaceStore(await realpath(root), maxWorkspaces, ids);
    await mkdir(store.metaDir, { recursive: true });
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true });
    if (ids) {
      await chmod(store.root, 0o711);
      await chmod(store.metaDir, 0o700);
      await chmod(store.tmpDir, 0o700);
    }
    const unplaced: string[] = [];
    for (const entry of await readdir(store.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !WORKSPACE_ID.test(entry.name)) continue;
      const { info, slot } = await store.loadMeta(entry.name);
      store.items.set(entry.name, info);
      const taken = [...store.slots.values()].includes(slot ?? -1);
      if (slot !== undefined && slot < maxWorkspaces && !taken) store.slots.set(entry.name, slot);
      else unplaced.push(entry.name);
    }
    for (const id of unplaced) {
      store.slots.set(id, store.freeSlot());
      await store.saveMeta(id);
    }
    if (ids) for (const id of store.items.keys()) await store.own(id);
    return store;
  }

  get count(): number {
    return this.items.size + this.pending.size;
  }

  list(): WorkspaceInfo[] {
    return [...this.items.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string): WorkspaceInfo | undefined {
    return this.items.get(id);
  }

  /** The workspace's directory; throws 404 when it does not exist. */
  dir(id: string): string {
    if (!this.items.has(id)) throw notFound(`workspace "${id}" not found`);
    return join(this.root, id);
  }

  /** The user the workspace's commands run as; undefined when workspaces have no users. */
  user(id: string): { uid: number; gid: number } | undefined {
    const slot = this.slots.get(id);
    if (!this.ids || slot === undefined) return undefined;
    return { uid: this.ids.uid + slot, gid: this.ids.gid + slot };
  }

  /**
   * The real directory an exec runs in: the workspace, or `relative` inside it, which must
   * exist, be a directory and, after symlinks, stay inside the workspace (else 400).
   */
  async workingDir(id: string, relative?: string): Promise<string> {
    if (relative === undefined) return this.realDir(id);
    // A cwd that does not exist (yet) or is a file: the workspace's state (409), not a bad request.
    return this.directory(id, relativeSegments(relative, "cwd"), (why) =>
      why.startsWith("does not exist") || why === "is not a directory"
        ? new ProblemError(409, `cwd "${relative}" ${why}`)
        : badRequest(`cwd "${relative}" ${why}`),
    );
  }

  /**
   * The real path of the directory `segments` below the workspace (none: the workspace
   * itself), which must exist, be a directory and, after symlinks, stay inside it; else
   * `refuse(why)` (what a missing directory is depends on the caller: a 400 cwd, a 404 listing).
   */
  async directory(id: string, segments: string[], refuse: (why: string) => Error): Promise<string> {
    const base = await this.realDir(id);
    if (segments.length === 0) return base;
    let real: string;
    try {
      real = await realpath(join(base, ...segments));
    } catch (err) {
      const code = errorCode(err);
      if (code === "ENOENT" || code === "ENOTDIR") throw refuse("does not exist in the workspace");
      throw fileError(err, segments);
    }
    if (!isInside(base, real)) throw badRequest(`"${segments.join("/")}" resolves outside the workspace`);
    if (!(await lstat(real)).isDirectory()) throw refuse("is not a directory");
    return real;
  }

  /** Idempotent create. `allowNew: false` (draining) refuses only workspaces that do not exist yet. */
  create(
    id: string,
    ownerId: string | null,
    allowNew = true,
  ): Promise<{ info: WorkspaceInfo; created: boolean }> {
    return this.serialize(id, async () => {
      const existing = this.items.get(id);
      if (existing) return { info: existing, created: false };
      if (!allowNew) throw new ProblemError(503, "this sandbox is draining and accepts no new workspaces");
      if (this.count >= this.maxWorkspaces)
        throw conflict(`this sandbox already holds its maximum of ${this.maxWorkspaces} workspaces`);
      this.pending.add(id);
      try {
        const info: WorkspaceInfo = { id, ownerId, createdAt: new Date().toISOString() };
        this.slots.set(id, this.freeSlot());
        await mkdir(join(this.root, id), { recursive: true });
        await this.own(id);
        this.items.set(id, info);
        await this.saveMeta(id);
        return { info, created: true };
      } catch (err) {
        if (!this.items.has(id)) this.slots.delete(id);
        throw err;
      } finally {
        this.pending.delete(id);
      }
    });
  }

  /** Idempotent delete: removes the directory recursively and the metadata. */
  remove(id: string): Promise<void> {
    return this.serialize(id, async () => {
      this.items.delete(id);
      await rm(join(this.root, id), { recursive: true, force: true });
      await rm(this.metaFile(id), { force: true });
      this.slots.delete(id);
    });
  }

  /** Writes `body` (at most `maxBytes`) atomically to the file; creates parent directories. */
  async writeFile(
    id: string,
    segments: string[],
    body: Readable,
    maxBytes: number,
  ): Promise<{ created: boolean }> {
    const base = await this.realDir(id);
    const parent = await this.ensureDirs(id, base, segments.slice(0, -1));
    const target = join(parent, segments.at(-1)!);
    const tmp = join(this.tmpDir, randomUUID());
    try {
      let size = 0;
      await pipeline(
        body,
        async function* limit(source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > maxBytes)
              throw new ProblemError(413, `file is larger than the limit of ${maxBytes} bytes`);
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: "wx" }),
      );
      await this.handOver(id, tmp);
      const existing = await lstat(target).catch(() => undefined);
      if (existing?.isDirectory()) throw conflict(`"${segments.join("/")}" is a directory`);
      await rename(tmp, target);
      return { created: existing === undefined };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Opens a regular file for reading; the caller closes the handle. */
  async openFile(id: string, segments: string[]): Promise<{ handle: FileHandle; size: number }> {
    const base = await this.realDir(id);
    let handle: FileHandle;
    try {
      handle = await open(
        join(base, ...segments),
        constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY,
      );
    } catch (err) {
      throw fileError(err, segments);
    }
    try {
      if (!isInside(base, await fdPath(handle, join(base, ...segments)))) throw outside();
      const st = await handle.stat();
      if (st.isDirectory()) throw badRequest(`"${segments.join("/")}" is a directory`);
      if (!st.isFile()) throw badRequest(`"${segments.join("/")}" is not a regular file`);
      return { handle, size: st.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Idempotent: removes a file, symlink or directory (recursively) inside the workspace. */
  async deleteFile(id: string, segments: string[]): Promise<void> {
    const base = await this.realDir(id);
    let parent: string;
    try {
      parent = await realpath(join(base, ...segments.slice(0, -1)));
    } catch (err) {
      if (errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR") return;
      throw fileError(err, segments);
    }
    if (!isInside(base, parent)) throw outside();
    await rm(join(parent, segments.at(-1)!), { recursive: true, force: true });
  }

  private get metaDir(): string {
    return join(this.root, ".meta");
  }

  private get tmpDir(): string {
    return join(this.root, ".tmp");
  }

  private metaFile(id: string): string {
    return join(this.metaDir, `${id}.json`);
  }

  private async loadMeta(id: string): Promise<{ info: WorkspaceInfo; slot: number | undefined }> {
    try {
      const meta = JSON.parse(await readFile(this.metaFile(id), "utf8")) as Partial<WorkspaceInfo> & {
        slot?: unknown;
      };
      const info = {
        id,
        ownerId: typeof meta.ownerId === "string" ? meta.ownerId : null,
        createdAt: typeof meta.createdAt === "string" ? meta.createdAt : new Date().toISOString(),
      };
      return { info, slot: Number.isInteger(meta.slot) ? (meta.slot as number) : undefined };
    } catch {
      const st = await lstat(join(this.root, id));
      return { info: { id, ownerId: null, createdAt: st.mtime.toISOString() }, slot: undefined };
    }
  }

  private async saveMeta(id: string): Promise<void> {
    await writeFile(this.metaFile(id), JSON.stringify({ ...this.items.get(id), slot: this.slots.get(id) }));
  }

  /** The lowest slot no workspace holds. */
  private freeSlot(): number {
    const taken = new Set(this.slots.values());
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  /** Makes the workspace directory its user's, mode 0700, with everything in it. */
  private async own(id: string, always = false): Promise<void> {
    const user = this.user(id);
    if (!user) return;
    const dir = join(this.root, id);
    const st = await lstat(dir);
    if (always || st.uid !== user.uid || st.gid !== user.gid) await chownTree(dir, user.uid, user.gid);
    await chmod(dir, 0o700);
  }

  /** Hands every file in the workspace to its user (after a restore or clone wrote them as the runtime). */
  async reown(id: string): Promise<void> {
    if (this.items.has(id)) await this.own(id, true);
  }

  /** Hands a path the runtime made inside a workspace to the workspace's user. */
  private async handOver(id: string, path: string): Promise<void> {
    const user = this.user(id);
    if (user) await lchown(path, user.uid, user.gid);
  }

  /** The workspace directory, checked to still be a real directory (not swapped for a symlink). */
  private async realDir(id: string): Promise<string> {
    const dir = this.dir(id);
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory())
      throw new ProblemError(500, `workspace "${id}" directory is missing or not a directory`);
    return dir;
  }

  /** mkdir -p that verifies each step really stays inside `base`; returns the real last directory. */
  private async ensureDirs(id: string, base: string, segments: string[]): Promise<string> {
    let current = base;
    for (const [i, segment] of segments.entries()) {
      const next = join(current, segment);
      try {
        await mkdir(next);
        await this.handOver(id, next);
      } catch (err) {
        if (errorCode(err) !== "EEXIST") throw fileError(err, segments.slice(0, i + 1));
      }
      const real = await realpath(next).catch((err: unknown) => {
        throw fileError(err, segments.slice(0, i + 1));
      });
      if (!isInside(base, real)) throw outside();
      if (!(await lstat(real)).isDirectory())
        throw conflict(`"${segments.slice(0, i + 1).join("/")}" is not a directory`);
      current = real;
    }
    return current;
  }

  /** Runs operations on one id one after another. */
  private serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return result;
  }
}

/** The first directory above `dir` that other users cannot search (no o+x), if any. */
export async function unsearchableParent(dir: string): Promise<string | undefined> {
  let current = dirname(dir);
  for (;;) {
    const st = await lstat(current);
    if ((st.mode & 0o001) === 0) return current;
    const up = dirname(current);
    if (up === current) return undefined;
    current = up;
  }
}

/** chown -R without following symlinks. */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), uid, gid);
}

/** The real path of an open file: /proc/self/fd on Linux (race-free), else realpath. */
async function fdPath(handle: FileHandle, fallback: string): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    return realpath(fallback);
  }
}

function fileError(err: unknown, segments: string[]): Error {
  const path = segments.join("/");
  switch (errorCode(err)) {
    case "ENOENT":
    case "ENOTDIR":
      return notFound(`file "${path}" not found`);
    case "ELOOP":
      return badRequest(`"${path}" has too many levels of symbolic links`);
    case "ENAMETOOLONG":
      return badRequest(`file path "${path.slice(0, 64)}..." is too long`);
    case "EACCES":
    case "EPERM":
      return new ProblemError(403, `permission denied for "${path}"`);
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}
