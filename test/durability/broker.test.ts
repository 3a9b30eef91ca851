// The store broker end to end with a real S3 server: a sandbox's DurableStore over brokered
// access (pre-signed URLs only, no credentials) flushes and restores its workspace; the
// broker refuses another pod, another workspace, a bad token, and keys outside the prefix.
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { STORE_PRESIGN_PATH } from "../../contracts/store.ts";
import { S3Objects } from "../../lib/objects.ts";
import { createLogger } from "../../lib/log.ts";
import { brokerWorld } from "../../operator/broker/fixtures.ts";
import { startBrokerServer, StoreBroker } from "../../operator/broker/server.ts";
import { BrokeredObjects, parseListPage } from "../../runtimes/sandbox/brokered.ts";
import { DurableStore } from "../../runtimes/sandbox/durable.ts";
import { startS3, weedBinary, type S3Server } from "../harness/s3.ts";

const BUCKET = "agentry-broker";
const missing = !weedBinary();
if (missing && process.env.CI === "true")
  throw new Error("SeaweedFS is not built: `make fetch` builds it (CI=true)");

let s3: S3Server;
let client: S3Client;
let tmp: string;
let brokerUrl: string;
let close: () => void;
const world = brokerWorld();
const tokens: Record<string, ReturnType<typeof world.caller>> = {
  "token-pod-1": world.caller("fleet-sandbox-1", "pod-1-uid"),
  "token-pod-2": world.caller("fleet-sandbox-2", "pod-2-uid"),
};

async function tokenFile(token: string): Promise<string> {
  const dir = await mkdtemp(join(tmp, "token-"));
  await writeFile(join(dir, "token"), `${token}\n`);
  return join(dir, "token");
}

describe(
  "store broker: pre-signed access for the pod a workspace is placed on",
  { skip: missing && "SeaweedFS not built (make fetch)" },
  () => {
    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), "agentry-broker-"));
      s3 = await startS3();
      await s3.createBucket(BUCKET);
      client = s3.client();
      // As the operator's FleetStores makes it: no checksum a pre-signed PUT could not match.
      const signer = new S3Client({ ...s3.clientConfig(), requestChecksumCalculation: "WHEN_REQUIRED" });
      const objects = new S3Objects({ client: signer, bucket: BUCKET, prefix: "fleets/a" });
      const broker = new StoreBroker({
        review: (token) => Promise.resolve(tokens[token]),
        inputs: world.inputs,
        stores: { forFleet: () => Promise.resolve({ objects, describe: "test" }) },
        log: createLogger("error", "operator"),
      });
      const { server, port } = await startBrokerServer({ host: "127.0.0.1", port: 0 }, broker);
      brokerUrl = `http://127.0.0.1:${port}`;
      close = () => server.close();
    });
    after(async () => {
      close?.();
      client?.destroy();
      await s3?.stop();
      await rm(tmp, { recursive: true, force: true });
    });

    it("flushes and restores through pre-signed URLs, under the workspace's prefix only", async () => {
      const store = new DurableStore({
        objects: new BrokeredObjects({ brokerUrl, tokenFile: await tokenFile("token-pod-1") }),
        limits: { keep: 2 },
      });
      const src = await mkdtemp(join(tmp, "src-"));
      await mkdir(join(src, "dir"));
      await writeFile(join(src, "dir", "a.txt"), "alpha");
      await writeFile(join(src, "b & <c>.txt"), "beta");
      for (const round of ["1", "2", "3"]) {
        await writeFile(join(src, "round"), round);
        await store.flush("team.ws", src);
      }
      const dst = await mkdtemp(join(tmp, "dst-"));
      const m = await new DurableStore({
        objects: new BrokeredObjects({ brokerUrl, tokenFile: await tokenFile("token-pod-1") }),
      }).restore("team.ws", dst);
      assert.equal(m?.seq, 3);
      assert.equal(await readFile(join(dst, "dir", "a.txt"), "utf8"), "alpha");
      assert.equal(await readFile(join(dst, "b & <c>.txt"), "utf8"), "beta");
      assert.equal(await readFile(join(dst, "round"), "utf8"), "3");
      const keys = (await client.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents!.map(
        (o) => o.Key!,
      );
      assert.ok(
        keys.every((k) => k.startsWith("fleets/a/team.ws/")),
        keys.join(", "),
      );
      assert.equal(
        keys.filter((k) => k.includes("/manifests/")).length,
        2,
        "pruning deletes through the broker too",
      );
    });

    const ask = async (token: string | undefined, body: unknown) =>
      fetch(`${brokerUrl}${STORE_PRESIGN_PATH}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const one = (workspace: string, key = "blobs/x") => ({ workspace, objects: [{ op: "get", key }] });

    const refused: [string, string | undefined, unknown, number, RegExp][] = [
      ["no token", undefined, one("team.ws"), 401, /bearer token/],
      ["a token the apiserver refuses", "forged", one("team.ws"), 401, /not a valid pod-bound/],
      [
        "another pod than the workspace's",
        "token-pod-2",
        one("team.ws"),
        403,
        /placed on fleet-sandbox-1, not on fleet-sandbox-2/,
      ],
      ["a workspace of another namespace", "token-pod-1", one("other.ws"), 403, /another namespace/],
      [
        "a key climbing out of the prefix",
        "token-pod-1",
        one("team.ws", "../team.elsewhere/blobs/x"),
        400,
        /relative to the workspace/,
      ],
      ["an absolute key", "token-pod-1", one("team.ws", "/etc"), 400, /relative to the workspace/],
    ];
    for (const [name, token, body, status, detail] of refused)
      it(`refuses ${name} (${status})`, async () => {
        const res = await ask(token, body);
        assert.equal(res.status, status);
        assert.match(((await res.json()) as { detail: string }).detail, detail);
      });

    it("a sandbox whose workspace moved away cannot flush it any more", async () => {
      const store = new DurableStore({
        objects: new BrokeredObjects({ brokerUrl, tokenFile: await tokenFile("token-pod-2") }),
      });
      const src = await mkdtemp(join(tmp, "moved-"));
      await writeFile(join(src, "f"), "x");
      await assert.rejects(store.flush("team.ws", src), /403/);
    });

    it("reads list answers, entities and continuation tokens included", () => {
      const page = parseListPage(
        "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b</Key></Contents>" +
          "<Contents><Key>p/&lt;c&gt;</Key></Contents><NextContinuationToken>t&amp;1</NextContinuationToken></ListBucketResult>",
      );
      assert.deepEqual(page, { keys: ["p/a&b", "p/<c>"], next: "t&1" });
    });
  },
);
