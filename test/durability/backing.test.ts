// A sandbox's workspaces and their store (runtimes/sandbox/backing.ts) with a real S3 server
// and a real git server: first placement clones and pins the commit, writes are flushed after
// a quiet time, a second sandbox restores them (not git), deletion removes them unless
// retained, and without a store the workspace says what it loses.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { createLogger } from "../../lib/log.ts";
import { Backing, NO_STORE_MESSAGE } from "../../runtimes/sandbox/backing.ts";
import { S3Objects } from "../../lib/objects.ts";
import { DurableStore } from "../../runtimes/sandbox/durable.ts";
import { startGitServer, type GitServer } from "../harness/git.ts";
import { waitFor } from "../harness/process.ts";
import { startS3, weedBinary, type S3Server } from "../harness/s3.ts";

const BUCKET = "agentry-backing";
const missing = !weedBinary();
if (missing && process.env.CI === "true")
  throw new Error("SeaweedFS is not built: `make fetch` builds it (CI=true)");

let s3: S3Server;
let git: GitServer;
let client: S3Client;
let tmp: string;
let commits: string[];
const log = createLogger("error", "sandbox");

describe(
  "durable workspaces: placement, flushes, restore",
  { skip: missing && "SeaweedFS not built (make fetch)" },
  () => {
    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), "agentry-backing-"));
      [s3, git] = await Promise.all([startS3(), startGitServer()]);
      await s3.createBucket(BUCKET);
      client = s3.client();
      commits = await git.createRepo("app", [{ files: { "README.md": "from git\n" }, tag: "v1" }]);
    });
    after(async () => {
      client?.destroy();
      await s3?.stop();
      await git?.stop();
      await rm(tmp, { recursive: true, force: true });
    });

    const sandbox = () =>
      new Backing({
        store: new DurableStore({ objects: new S3Objects({ client, bucket: BUCKET, prefix: "fleet" }) }),
        log,
        debounceMs: 200,
      });

    it("clones once, flushes after writes go quiet, and restores on another sandbox", async () => {
      const one = sandbox();
      const dirA = await mkdtemp(join(tmp, "a-"));
      const source = { url: `${git.url}/app.git`, ref: "v1" };
      one.place({ id: "ns.ws", dir: dirA, source });
      const placed = (await one.placed("ns.ws"))!;
      assert.equal(placed.origin, "cloned");
      assert.equal(placed.sourceCommit, commits[0]);
      assert.equal(placed.durable, true, "the first flush follows the clone");
      const first = placed.lastFlushTime;

      await writeFile(join(dirA, "notes.txt"), "written in the sandbox\n");
      one.touched("ns.ws");
      assert.equal(one.state("ns.ws")?.dirty, true);
      await waitFor("the debounced flush", () => one.state("ns.ws")?.lastFlushTime !== first);
      assert.equal(one.state("ns.ws")?.durable, true);
      assert.equal(one.state("ns.ws")?.dirty, false);

      // The pod goes away (drain, scale-in); another sandbox takes the workspace.
      await one.flush("ns.ws");
      one.forget("ns.ws");
      const fetches = git.requests.length;
      const two = sandbox();
      const dirB = await mkdtemp(join(tmp, "b-"));
      two.place({ id: "ns.ws", dir: dirB, source });
      const again = (await two.placed("ns.ws"))!;
      assert.equal(again.origin, "restored");
      assert.equal(git.requests.length, fetches, "later placements restore from the store, not from git");
      assert.equal(await readFile(join(dirB, "notes.txt"), "utf8"), "written in the sandbox\n");
      assert.equal(await readFile(join(dirB, "README.md"), "utf8"), "from git\n");

      // flushAll (SIGTERM, drain) flushes what changed; delete removes it from the store.
      await writeFile(join(dirB, "late.txt"), "x");
      two.touched("ns.ws");
      assert.deepEqual(await two.flushAll(), []);
      assert.equal(two.state("ns.ws")?.dirty, false);
      await two.removeStored("ns.ws");
      const left = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "fleet/ns.ws/" }));
      assert.equal(left.KeyCount ?? 0, 0);
    });

    it("keeps a retained workspace's files on delete", async () => {
      const one = sandbox();
      const dir = await mkdtemp(join(tmp, "r-"));
      one.place({ id: "ns.keep", dir });
      await one.placed("ns.keep");
      await writeFile(join(dir, "f"), "kept");
      await one.flush("ns.keep");
      one.forget("ns.keep");
      const two = sandbox();
      two.place({ id: "ns.keep", dir: await mkdtemp(join(tmp, "r2-")) });
      assert.equal((await two.placed("ns.keep"))?.origin, "restored");
    });

    it("a store it cannot restore from: not ready, a clear reason, retried with backoff", async () => {
      const broken = new Backing({
        store: new DurableStore({
          objects: new S3Objects({ client, bucket: "no-such-bucket-agentry", prefix: "x" }),
        }),
        log,
        retryMs: 50,
      });
      const dir = await mkdtemp(join(tmp, "f-"));
      broken.place({ id: "ns.broken", dir });
      const st = await broken.placed("ns.broken");
      assert.equal(st?.phase, "failed");
      assert.equal(st?.reason, "RestoreFailed");
      assert.match(st?.message ?? "", /restoring from the object store failed \(attempt 1/);
      assert.equal(broken.ready("ns.broken"), false);
      await waitFor("a retry", () => /attempt [2-9]/.test(broken.state("ns.broken")?.message ?? ""));
      broken.forget("ns.broken");
    });

    it("a failing clone says why and is retried", async () => {
      const b = sandbox();
      b.place({
        id: "ns.badgit",
        dir: await mkdtemp(join(tmp, "g-")),
        source: { url: `${git.url}/missing.git` },
      });
      const st = await b.placed("ns.badgit");
      assert.equal(st?.phase, "failed");
      assert.match(st?.reason ?? "", /CloneFailed|RefNotFound/);
      assert.match(st?.message ?? "", /cloning the git source failed/);
      b.forget("ns.badgit");
    });

    it("without a store: not durable, and the message says what is lost", async () => {
      const none = new Backing({ log });
      none.place({ id: "ns.plain", dir: await mkdtemp(join(tmp, "n-")) });
      const st = await none.placed("ns.plain");
      assert.equal(st?.phase, "ready");
      assert.equal(st?.durable, false);
      assert.equal(st?.message, NO_STORE_MESSAGE);
    });
  },
);
