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
      const placed = await one.place({ id: "ns.ws", dir: dirA, source });
      assert.equal(placed.origin, "cloned");
      assert.equal(placed.sourceCommit, commits[0]);
      assert.equal(placed.durable, true, "the first flush follows the clone");
      const first = placed.lastFlushTime;

      await writeFile(join(dirA, "notes.txt"), "written in the sandbox\n");
      one.touched("ns.ws");
      await waitFor("the debounced flush", () => one.state("ns.ws").lastFlushTime !== first);
      assert.equal(one.state("ns.ws").durable, true);

      // The pod goes away (drain, scale-in); another sandbox takes the workspace.
      await one.release("ns.ws");
      const fetches = git.requests.length;
      const two = sandbox();
      const dirB = await mkdtemp(join(tmp, "b-"));
      const again = await two.place({ id: "ns.ws", dir: dirB, source });
      assert.equal(again.origin, "restored");
      assert.equal(git.requests.length, fetches, "later placements restore from the store, not from git");
      assert.equal(await readFile(join(dirB, "notes.txt"), "utf8"), "written in the sandbox\n");
      assert.equal(await readFile(join(dirB, "README.md"), "utf8"), "from git\n");

      // flushAll (SIGTERM, drain) flushes what changed; delete removes it from the store.
      await writeFile(join(dirB, "late.txt"), "x");
      assert.deepEqual(await two.flushAll(), []);
      await two.remove("ns.ws", false);
      const left = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "fleet/ns.ws/" }));
      assert.equal(left.KeyCount ?? 0, 0);
    });

    it("keeps a retained workspace's files on delete", async () => {
      const one = sandbox();
      const dir = await mkdtemp(join(tmp, "r-"));
      await one.place({ id: "ns.keep", dir });
      await writeFile(join(dir, "f"), "kept");
      await one.flush("ns.keep");
      await one.remove("ns.keep", true);
      const restored = await sandbox().place({ id: "ns.keep", dir: await mkdtemp(join(tmp, "r2-")) });
      assert.equal(restored.origin, "restored");
    });

    it("a failing flush says so and leaves the workspace not durable", async () => {
      const broken = new Backing({
        store: new DurableStore({
          objects: new S3Objects({ client, bucket: "no-such-bucket-agentry", prefix: "x" }),
        }),
        log,
      });
      const dir = await mkdtemp(join(tmp, "f-"));
      await assert.rejects(broken.place({ id: "ns.broken", dir }));
      const failed = await broken.flushAll();
      assert.equal(failed.length, 1);
      assert.equal(broken.state("ns.broken").durable, false);
      assert.match(broken.state("ns.broken").message ?? "", /flush failed/);
    });

    it("without a store: not durable, and the message says what is lost", async () => {
      const none = new Backing({ log });
      const st = await none.place({ id: "ns.plain", dir: await mkdtemp(join(tmp, "n-")) });
      assert.equal(st.durable, false);
      assert.equal(st.message, NO_STORE_MESSAGE);
    });
  },
);
