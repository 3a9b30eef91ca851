// Access to one workspace's objects in an S3-compatible store, with keys relative to the
// workspace's own prefix (`<store prefix>/<workspace id>/`): whoever holds an ObjectAccess
// cannot name a key of another workspace. Two implementations: S3Objects (direct, with the
// store's credentials: the operator and tests) and the sandbox's brokered access
// (runtimes/sandbox/brokered.ts: pre-signed URLs from the operator, no credentials).
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";

/**
 * The S3 SDK, loaded on first use: a program that never touches a store (an operator whose
 * fleets have none) does not pay the SDK's ~15 MiB of memory.
 */
export const s3sdk = () => import("@aws-sdk/client-s3");

/** What a put sends: a file on disk (streamed) or bytes in memory. */
export type ObjectBody = { file: string; size: number } | { bytes: Buffer | string; contentType?: string };

export interface ObjectAccess {
  put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void>;
  /** The object's contents as a stream; throws ObjectNotFound when it does not exist. */
  get(key: string, signal?: AbortSignal): Promise<Readable>;
  exists(key: string, signal?: AbortSignal): Promise<boolean>;
  /** Every key under `prefix` (relative keys). */
  list(prefix: string, signal?: AbortSignal): Promise<string[]>;
  delete(keys: string[], signal?: AbortSignal): Promise<void>;
}

/** Where a workspace's objects are: one ObjectAccess per workspace id. */
export interface ObjectStore {
  workspace(id: string): ObjectAccess;
}

export class ObjectNotFound extends Error {}

/** Joins a store prefix and a workspace id into the workspace's key prefix (no trailing "/"). */
export function workspacePrefix(storePrefix: string | undefined, id: string): string {
  return [(storePrefix ?? "").replace(/^\/+|\/+$/g, ""), id].filter(Boolean).join("/");
}

/** A key relative to a workspace: no leading "/", no "." or ".." or empty segments. */
export function checkRelativeKey(key: string, allowEmpty = false): void {
  if (allowEmpty && key === "") return;
  if (
    key.length > 900 ||
    key.startsWith("/") ||
    key.split("/").some((s) => s === "" || s === "." || s === "..")
  )
    throw new Error(`invalid object key ${JSON.stringify(key.slice(0, 100))}`);
}

/** Removes every object of a workspace; how many were removed. */
export async function removeAllObjects(objects: ObjectAccess, signal?: AbortSignal): Promise<number> {
  let removed = 0;
  for (;;) {
    const keys = await objects.list("", signal);
    if (!keys.length) return removed;
    await objects.delete(keys, signal);
    removed += keys.length;
  }
}

/** Direct access with the store's credentials. */
export class S3Objects implements ObjectStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;

  constructor(options: { client: S3Client; bucket: string; prefix?: string }) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  }

  workspace(id: string): ObjectAccess {
    return new S3WorkspaceObjects(this.client, this.bucket, workspacePrefix(this.prefix, id));
  }
}

class S3WorkspaceObjects implements ObjectAccess {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly root: string;

  constructor(s3: S3Client, bucket: string, root: string) {
    this.s3 = s3;
    this.bucket = bucket;
    this.root = root;
  }

  private key(rel: string): string {
    checkRelativeKey(rel);
    return `${this.root}/${rel}`;
  }

  async put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void> {
    const { PutObjectCommand } = await s3sdk();
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(key),
        ...("file" in body
          ? { Body: createReadStream(body.file), ContentLength: body.size }
          : { Body: body.bytes, ...(body.contentType ? { ContentType: body.contentType } : {}) }),
      }),
      { abortSignal: signal },
    );
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    const { GetObjectCommand } = await s3sdk();
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), {
        abortSignal: signal,
      });
      return res.Body as Readable;
    } catch (err) {
      if (isS3NotFound(err)) throw new ObjectNotFound(`${key} not found`);
      throw err;
    }
  }

  async exists(key: string, signal?: AbortSignal): Promise<boolean> {
    const { HeadObjectCommand } = await s3sdk();
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), {
        abortSignal: signal,
      });
      return true;
    } catch (err) {
      if (isS3NotFound(err)) return false;
      throw err;
    }
  }

  async list(prefix: string, signal?: AbortSignal): Promise<string[]> {
    checkRelativeKey(prefix.replace(/\/$/, ""), true);
    const { ListObjectsV2Command } = await s3sdk();
    const full = `${this.root}/${prefix}`;
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ContinuationToken: token }),
        { abortSignal: signal },
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.root.length + 1));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async delete(keys: string[], signal?: AbortSignal): Promise<void> {
    const { DeleteObjectsCommand } = await s3sdk();
    for (let i = 0; i < keys.length; i += 1000)
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: this.key(k) })) },
        }),
        { abortSignal: signal },
      );
  }
}

function isS3NotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}
