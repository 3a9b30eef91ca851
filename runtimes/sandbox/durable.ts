// A workspace's files kept in an S3-compatible object store, so they outlive the sandbox pod.
//
// Layout under <prefix>/<workspace id>/:
//   blobs/<sha256>            file contents, content-addressed (a flush uploads only what is new)
//   manifests/<seq>.json      one per completed flush: every file with its hash, size and mode,
//                             and the SHA-256 of that list; written LAST, so a flush that dies
//                             half-way leaves the previous manifest as the newest complete one
// Restore takes the newest manifest that parses, matches its own checksum and whose blobs all
// exist, and falls back to the one before when it does not (a corrupt or partial flush).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lstat, mkdir, readdir, readlink, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";

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

export class DurableStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly limits: DurableLimits;
  /** Per workspace, the last manifest this process wrote or read (what is already stored). */
  private readonly last = new Map<string, Manifest>();

  constructor(options: {
    client: S3Client;
    bucket: string;
    prefix?: string;
    limits?: Partial<DurableLimits>;
  }) {
    this.s3 = options.client;
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  private key(id: string, ...rest: string[]): string {
    return [this.prefix, id, ...rest].filter(Boolean).join("/");
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
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(id, "blobs", e.sha256),
          Body: createReadStream(join(dir, e.path)),
          ContentLength: e.size,
        }),
        { abortSignal: signal },
      );
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
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(id, "manifests", `${String(seq).padStart(12, "0")}.json`),
        Body: JSON.stringify(manifest),
        ContentType: "application/json",
      }),
      { abortSignal: signal },
    );
    this.last.set(id, manifest);
    await this.prune(id, signal).catch(() => undefined);
    return { seq, files: entries.length, bytes, uploaded, uploadedBytes, time: manifest.time };
  }

  /**
   * Restores the newest complete flush into `dir` (which should be empty). Returns its
   * manifest, or undefined when nothing was ever flushed for this workspace.
   */
  async restore(id: string, dir: string, signal?: AbortSignal): Promise<Manifest | undefined> {
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
      if (e.link !== undefined) {
        await rm(target, { force: true });
        await symlink(e.link, target);
        continue;
      }
      const res = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id, "blobs", e.sha256!) }),
        { abortSignal: signal },
      );
      const body = res.Body as Readable;
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
    }
    this.last.set(id, manifest);
    return manifest;
  }

  /** Removes everything stored for the workspace. */
  async remove(id: string, signal?: AbortSignal): Promise<number> {
    let removed = 0;
    for (;;) {
      const keys = await this.list(this.key(id) + "/", signal);
      if (!keys.length) break;
      for (let i = 0; i < keys.length; i += 1000) {
        await this.s3.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
          }),
          { abortSignal: signal },
        );
      }
      removed += keys.length;
    }
    this.last.delete(id);
    return removed;
  }

  /** The newest manifest that is complete (parses, checksum matches, its blobs exist). */
  async newest(
    id: string,
    signal?: AbortSignal,
  ): Promise<{ manifest: Manifest; skipped: string[] } | undefined> {
    const keys = (await this.list(this.key(id, "manifests") + "/", signal)).sort().reverse();
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
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
        abortSignal: signal,
      });
      const m = JSON.parse(await res.Body!.transformToString()) as Manifest;
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
        await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(id, "blobs", h) }), {
          abortSignal: signal,
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        return false;
      }
    }
    return true;
  }

  /** Keeps the newest `keep` manifests and the blobs they use. */
  private async prune(id: string, signal?: AbortSignal): Promise<void> {
    const manifests = (await this.list(this.key(id, "manifests") + "/", signal)).sort().reverse();
    if (manifests.length <= this.limits.keep) return;
    const kept = manifests.slice(0, this.limits.keep);
    const used = new Set<string>();
    for (const key of kept) {
      const m = await this.readManifest(key, id, signal);
      if (!m) return; // not sure what is still needed: keep everything
      for (const e of m.entries) if (e.sha256) used.add(e.sha256);
    }
    const blobs = await this.list(this.key(id, "blobs") + "/", signal);
    const garbage = [
      ...manifests.slice(this.limits.keep),
      ...blobs.filter((k) => !used.has(k.split("/").pop()!)),
    ];
    for (let i = 0; i < garbage.length; i += 1000)
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: garbage.slice(i, i + 1000).map((Key) => ({ Key })) },
        }),
        { abortSignal: signal },
      );
  }

  private async list(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        { abortSignal: signal },
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys;
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
