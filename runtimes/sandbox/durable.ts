// A workspace's files kept in an S3-compatible object store, so they outlive the sandbox pod.
//
// Layout under <prefix>/<workspace id>/:
//   blobs/<sha256>            file contents, content-addressed (a flush uploads only what is new)
//   manifests/<seq>.json      one per completed flush: every file with its hash, size and mode,
//                             and the SHA-256 of that list; written LAST, so a flush that dies
//                             half-way leaves the previous manifest as the newest complete one
// Restore takes the newest manifest that parses, matches its own checksum and whose blobs all
// exist, and falls back to the one before when it does not (a corrupt or partial flush).
// Objects are reached through an ObjectStore (lib/objects.ts): direct with credentials, or
// brokered through pre-signed URLs (brokered.ts), which is how a sandbox reaches them.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  chmod,
  lchown,
  lstat,
  mkdir,
  readdir,
  readlink,
  realpath,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { removeAllObjects, type ObjectAccess, type ObjectStore } from "../../lib/objects.ts";

export interface ManifestEntry {
  path: string;
  /** sha256 of the contents (files) */
  sha256?: string;
  size: number;
  mode: number;
  /** target (symlinks) */
  link?: string;
}

export interface Manifest {
  version: 1;
  workspace: string;
  seq: number;
  time: string;
  bytes: number;
  entries: ManifestEntry[];
  /** sha256 of JSON.stringify(entries) */
  checksum: string;
}

export interface FlushResult {
  seq: number;
  files: number;
  bytes: number;
  uploaded: number;
  uploadedBytes: number;
  time: string;
}

export interface DurableLimits {
  /** Largest workspace a flush accepts (bytes). */
  maxBytes: number;
  /** Most files a flush accepts. */
  maxFiles: number;
  /** Manifests kept (older ones and blobs only they use are removed). */
  keep: number;
}

const DEFAULT_LIMITS: DurableLimits = { maxBytes: 10 * 1024 ** 3, maxFiles: 200_000, keep: 3 };

export class DurableError extends Error {}

/** Who the restored files belong to (the workspace's user), when the runtime runs as root. */
export interface Owner {
  uid: number;
  gid: number;
}

export class DurableStore {
  private readonly objects: ObjectStore;
  private readonly limits: DurableLimits;
  /** Per workspace, the last manifest this process wrote or read (what is already stored). */
  private readonly last = new Map<string, Manifest>();

  constructor(options: { objects: ObjectStore; limits?: Partial<DurableLimits> }) {
    this.objects = options.objects;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  private at(id: string): ObjectAccess {
    return this.objects.workspace(id);
  }

  /** Uploads what changed in `dir` since the last flush and writes a new manifest last. */
  async flush(id: string, dir: string, signal?: AbortSignal): Promise<FlushResult> {
    const previous = this.last.get(id) ?? (await this.newest(id, signal))?.manifest;
    const entries = await this.scan(dir, signal);
    const known = new Set((previous?.entries ?? []).flatMap((e) => (e.sha256 ? [e.sha256] : [])));
    let uploaded = 0;
    let uploadedBytes = 0;
    const sent = new Set<string>();
    for (const e of entries) {
      if (!e.sha256 || known.has(e.sha256) || sent.has(e.sha256)) continue;
      signal?.throwIfAborted();
      await this.at(id).put(`blobs/${e.sha256}`, { file: join(dir, e.path), size: e.size }, signal);
      sent.add(e.sha256);
      uploaded++;
      uploadedBytes += e.size;
    }
    const seq = (previous?.seq ?? 0) + 1;
    const bytes = entries.reduce((n, e) => n + e.size, 0);
    const manifest: Manifest = {
      version: 1,
      workspace: id,
      seq,
      time: new Date().toISOString(),
      bytes,
      entries,
      checksum: checksum(entries),
    };
    signal?.throwIfAborted();
    await this.at(id).put(
      `manifests/${String(seq).padStart(12, "0")}.json`,
      { bytes: JSON.stringify(manifest), contentType: "application/json" },
      signal,
    );
    this.last.set(id, manifest);
    await this.prune(id, signal).catch(() => undefined);
    return { seq, files: entries.length, bytes, uploaded, uploadedBytes, time: manifest.time };
  }

  /**
   * Restores the newest complete flush into `dir` (which should be empty). Returns its
   * manifest, or undefined when nothing was ever flushed for this workspace.
   */
  async restore(id: string, dir: string, signal?: AbortSignal, owner?: Owner): Promise<Manifest | undefined> {
    const found = await this.newest(id, signal);
    if (!found) return undefined;
    const { manifest } = found;
    await mkdir(dir, { recursive: true });
    const root = await realpath(dir);
    for (const e of manifest.entries) {
      signal?.throwIfAborted();
      const target = safeJoin(dir, e.path);
      await mkdir(dirname(target), { recursive: true });
      // A symlink restored earlier must not carry a later file outside the workspace.
      const parent = await realpath(dirname(target));
      if (parent !== root && !parent.startsWith(root + sep))
        throw new DurableError(
          `refusing ${JSON.stringify(e.path)}: it would be written outside the workspace`,
        );
      if (owner) await chownDirs(root, dirname(target), owner);
      if (e.link !== undefined) {
        await rm(target, { force: true });
        await symlink(e.link, target);
        if (owner) await lchown(target, owner.uid, owner.gid);
        continue;
      }
      const body: Readable = await this.at(id).get(`blobs/${e.sha256!}`, signal);
      const hash = createHash("sha256");
      const chunks: Buffer[] = [];
      for await (const chunk of body) {
        hash.update(chunk as Buffer);
        chunks.push(chunk as Buffer);
      }
      if (hash.digest("hex") !== e.sha256)
        throw new DurableError(`blob of ${e.path} does not match its hash`);
      await writeFile(target, Buffer.concat(chunks));
      await chmod(target, e.mode & 0o777);
      if (owner) await lchown(target, owner.uid, owner.gid);
    }
    this.last.set(id, manifest);
    return manifest;
  }

  /** Removes everything stored for the workspace. */
  async remove(id: string, signal?: AbortSignal): Promise<number> {
    const removed = await removeAllObjects(this.at(id), signal);
    this.last.delete(id);
    return removed;
  }

  /** The newest manifest that is complete (parses, checksum matches, its blobs exist). */
  async newest(
    id: string,
    signal?: AbortSignal,
  ): Promise<{ manifest: Manifest; skipped: string[] } | undefined> {
    const keys = (await this.at(id).list("manifests/", signal)).sort().reverse();
    const skipped: string[] = [];
    for (const key of keys) {
      const manifest = await this.readManifest(key, id, signal);
      if (manifest && (await this.blobsExist(id, manifest, signal))) return { manifest, skipped };
      skipped.push(key);
    }
    return undefined;
  }

  private async readManifest(key: string, id: string, signal?: AbortSignal): Promise<Manifest | undefined> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.at(id).get(key, signal)) chunks.push(chunk as Buffer);
      const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Manifest;
      if (m.version !== 1 || m.workspace !== id || !Array.isArray(m.entries)) return undefined;
      if (checksum(m.entries) !== m.checksum) return undefined;
      return m;
    } catch (err) {
      if (signal?.aborted) throw err;
      return undefined;
    }
  }

  private async blobsExist(id: string, m: Manifest, signal?: AbortSignal): Promise<boolean> {
    const hashes = [...new Set(m.entries.flatMap((e) => (e.sha256 ? [e.sha256] : [])))];
    for (const h of hashes) {
      try {
        if (!(await this.at(id).exists(`blobs/${h}`, signal))) return false;
      } catch (err) {
        if (signal?.aborted) throw err;
        return false;
      }
    }
    return true;
  }

  /** Keeps the newest `keep` manifests and the blobs they use. */
  private async prune(id: string, signal?: AbortSignal): Promise<void> {
    const manifests = (await this.at(id).list("manifests/", signal)).sort().reverse();
    if (manifests.length <= this.limits.keep) return;
    const kept = manifests.slice(0, this.limits.keep);
    const used = new Set<string>();
    for (const key of kept) {
      const m = await this.readManifest(key, id, signal);
      if (!m) return; // not sure what is still needed: keep everything
      for (const e of m.entries) if (e.sha256) used.add(e.sha256);
    }
    const blobs = await this.at(id).list("blobs/", signal);
    const garbage = [
      ...manifests.slice(this.limits.keep),
      ...blobs.filter((k) => !used.has(k.split("/").pop()!)),
    ];
    await this.at(id).delete(garbage, signal);
  }

  /** Every regular file and symlink under `dir`, hashed, within the limits. */
  private async scan(dir: string, signal?: AbortSignal): Promise<ManifestEntry[]> {
    const out: ManifestEntry[] = [];
    let bytes = 0;
    const walk = async (d: string): Promise<void> => {
      for (const name of (await readdir(d)).sort()) {
        signal?.throwIfAborted();
        const full = join(d, name);
        const st = await lstat(full);
        const path = relative(dir, full).split(sep).join("/");
        if (st.isDirectory()) {
          await walk(full);
        } else if (st.isSymbolicLink()) {
          out.push({ path, size: 0, mode: st.mode, link: await readlink(full) });
        } else if (st.isFile()) {
          bytes += st.size;
          if (bytes > this.limits.maxBytes)
            throw new DurableError(`workspace is larger than the limit of ${this.limits.maxBytes} bytes`);
          out.push({ path, size: st.size, mode: st.mode, sha256: await hashFile(full) });
        }
        if (out.length > this.limits.maxFiles)
          throw new DurableError(`workspace has more than the limit of ${this.limits.maxFiles} files`);
      }
    };
    await walk(dir);
    return out;
  }
}

/** Hands the directories from `root` (exclusive) down to `dir` to the owner. */
async function chownDirs(root: string, dir: string, owner: Owner): Promise<void> {
  const rel = relative(root, dir);
  if (!rel) return;
  let current = root;
  for (const part of rel.split(sep)) {
    current = join(current, part);
    await lchown(current, owner.uid, owner.gid);
  }
}

function checksum(entries: ManifestEntry[]): string {
  return createHash("sha256").update(JSON.stringify(entries)).digest("hex");
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** dir/path, refusing anything that would land outside dir (a hostile manifest). */
export function safeJoin(dir: string, path: string): string {
  if (path === "" || path.startsWith("/") || path.split("/").some((p) => p === ".." || p === "." || p === ""))
    throw new DurableError(`refusing path ${JSON.stringify(path)} from a manifest`);
  return join(dir, ...path.split("/"));
}
