// The object-store backing of workspaces (runtimes/sandbox/durable.ts) against a real
// S3-compatible server (SeaweedFS on loopback): round trips, incremental flushes, a flush
// that dies before its manifest, a corrupt manifest, hostile manifests, limits, removal.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { S3Objects } from "../../lib/objects.ts";
import { DurableStore } from "../../runtimes/sandbox/durable.ts";
import { startS3, weedBinary, type S3Server } from "../harness/s3.ts";

const BUCKET = "agentry-durable";
let s3: S3Server | undefined;
let client: S3Client;
let tmp: string;

const missing = !weedBinary();
if (missing && process.env.CI === "true")
  throw new Error("SeaweedFS is not built: `make fetch` builds it (CI=true)");

async function workspace(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmp, "ws-"));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

const keys = async (prefix: string) =>
  ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map(
    (o) => o.Key!,
  );

describe(
  "durable workspaces: the object store",
  { skip: missing && "SeaweedFS not built (make fetch)" },
  () => {
    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), "agentry-durable-"));
      s3 = await startS3();
      await s3.createBucket(BUCKET);
      client = s3.client();
    });
    after(async () => {
      client?.destroy();
      await s3?.stop();
      await rm(tmp, { recursive: true, force: true });
    });

    it("restores exactly what was flushed: contents, modes, nested dirs, empty files, symlinks", async () => {
      const store = new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "t1" }) });
      const src = await workspace({ "a.txt": "alpha", "src/main.ts": "export {};\n", empty: "" });
      await writeFile(join(src, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
      await symlink("src/main.ts", join(src, "link"));
      const flushed = await store.flush("ns.ws", src);
      assert.equal(flushed.files, 5);
      assert.equal(flushed.seq, 1);

      const dst = await mkdtemp(join(tmp, "restore-"));
      // A fresh store (a new sandbox) knows nothing but the bucket.
      const m = await new DurableStore({
        objects: new S3Objects({ client, bucket: BUCKET, prefix: "t1" }),
      }).restore("ns.ws", dst);
      assert.equal(m?.seq, 1);
      assert.equal(await readFile(join(dst, "a.txt"), "utf8"), "alpha");
      assert.equal(await readFile(join(dst, "src/main.ts"), "utf8"), "export {};\n");
      assert.equal(await readFile(join(dst, "empty"), "utf8"), "");
      assert.equal((await stat(join(dst, "run.sh"))).mode & 0o777, 0o755);
      assert.equal(await readlink(join(dst, "link")), "src/main.ts");
      assert.equal(
        await new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "t1" }) }).restore(
          "ns.other",
          dst,
        ),
        undefined,
      );
    });

    it("uploads only what changed", async () => {
      const store = new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "t2" }) });
      const src = await workspace({ "big.bin": "x".repeat(100_000), "small.txt": "1" });
      const first = await store.flush("ns.ws", src);
      assert.equal(first.uploaded, 2);
      await writeFile(join(src, "small.txt"), "2");
      const second = await store.flush("ns.ws", src);
      assert.equal(second.uploaded, 1);
      assert.equal(second.uploadedBytes, 1);
      assert.equal(second.seq, 2);
      const unchanged = await store.flush("ns.ws", src);
      assert.equal(unchanged.uploaded, 0);
    });

    it("a flush that dies before its manifest leaves the previous flush restorable; a corrupt manifest is skipped", async () => {
      const store = new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "t3" }) });
      const src = await workspace({ "f.txt": "v1" });
      await store.flush("ns.ws", src);
      // A flush aborted half-way: blobs may be there, no manifest.
      await writeFile(join(src, "f.txt"), "v2");
      const aborted = new AbortController();
      aborted.abort();
      await assert.rejects(store.flush("ns.ws", src, aborted.signal));
      // A manifest that is newer but corrupt (half-written, or tampered with).
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "t3/ns.ws/manifests/000000000009.json",
          Body: '{"version":1,"work',
        }),
      );
      // A manifest that is well-formed but names a blob that never arrived (a partial upload).
      const entries = [{ path: "f.txt", size: 2, mode: 0o100644, sha256: "f".repeat(64) }];
      const partial = {
        version: 1,
        workspace: "ns.ws",
        seq: 5,
        time: new Date().toISOString(),
        bytes: 2,
        entries,
      };
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "t3/ns.ws/manifests/000000000005.json",
          Body: JSON.stringify({
            ...partial,
            checksum: createHash("sha256").update(JSON.stringify(entries)).digest("hex"),
          }),
        }),
      );
      const dst = await mkdtemp(join(tmp, "restore-"));
      const m = await new DurableStore({
        objects: new S3Objects({ client, bucket: BUCKET, prefix: "t3" }),
      }).restore("ns.ws", dst);
      assert.equal(m?.seq, 1);
      assert.equal(await readFile(join(dst, "f.txt"), "utf8"), "v1");
    });

    it("refuses a hostile manifest that would write outside the workspace", async () => {
      const entries = [{ path: "../escape.txt", size: 1, mode: 0o644, sha256: "0".repeat(64) }];
      const manifest = {
        version: 1,
        workspace: "ns.evil",
        seq: 1,
        time: new Date().toISOString(),
        bytes: 1,
        entries,
        checksum: createHash("sha256").update(JSON.stringify(entries)).digest("hex"),
      };
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `t4/ns.evil/blobs/${"0".repeat(64)}`, Body: "x" }),
      );
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "t4/ns.evil/manifests/000000000001.json",
          Body: JSON.stringify(manifest),
        }),
      );
      const dst = await mkdtemp(join(tmp, "restore-"));
      await assert.rejects(
        new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "t4" }) }).restore(
          "ns.evil",
          join(dst, "ws"),
        ),
        /refusing path/,
      );
      await assert.rejects(stat(join(dst, "escape.txt")), /ENOENT/);
    });

    it("enforces the size limit with a clear error, keeps few manifests, and removes everything", async () => {
      const store = new DurableStore({
        objects: new S3Objects({ client, bucket: BUCKET, prefix: "t5" }),
        limits: { maxBytes: 10, keep: 2 },
      });
      const big = await workspace({ a: "12345678901" });
      await assert.rejects(store.flush("ns.big", big), /larger than the limit of 10 bytes/);
      const src = await workspace({ a: "1" });
      for (const v of ["1", "2", "3", "4"]) {
        await writeFile(join(src, "a"), v);
        await store.flush("ns.ws", src);
      }
      const manifests = await keys("t5/ns.ws/manifests/");
      assert.equal(manifests.length, 2);
      assert.equal((await keys("t5/ns.ws/blobs/")).length, 2, "blobs of pruned manifests are gone");
      assert.ok((await store.remove("ns.ws")) >= 4);
      assert.deepEqual(await keys("t5/ns.ws/"), []);
    });
  },
);
