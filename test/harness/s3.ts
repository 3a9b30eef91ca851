// A real S3-compatible object store for the tests and `make dev`: SeaweedFS (`weed server
// -s3`), built from its Go module by hack/s3/build.sh and cached outside the repo, started
// on free loopback ports with a temp data dir and one access key.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, ListBucketsCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { repoRoot } from "./paths.ts";
import { freePort, Supervised, waitFor } from "./process.ts";
import { errorMessage } from "../../lib/log.ts";

export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  client(): S3Client;
  /** What client() is made of (endpoint, region, path style, credentials). */
  clientConfig(): S3ClientConfig;
  createBucket(name: string): Promise<void>;
  /** Freezes the server (SIGSTOP): requests to it hang until resume(). */
  pause(): void;
  resume(): void;
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** Path of the cached `weed` binary, or undefined when it is not built (hack/s3/build.sh --check). */
export function weedBinary(build = false): string | undefined {
  try {
    return execFileSync("bash", [join(repoRoot, "hack", "s3", "build.sh"), ...(build ? [] : ["--check"])], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch {
    return undefined;
  }
}

export async function startS3(options: { dir?: string; weed?: string } = {}): Promise<S3Server> {
  const weed = options.weed ?? weedBinary();
  if (!weed) throw new Error("SeaweedFS is not built: run `make fetch` (hack/s3/build.sh)");
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "agentry-s3-")));
  await mkdir(dir, { recursive: true });
  const ports = await Promise.all(Array.from({ length: 8 }, () => freePort()));
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = ports;
  const accessKeyId = `agentry${randomBytes(6).toString("hex")}`;
  const secretAccessKey = randomBytes(24).toString("hex");
  const config = join(dir, "s3.json");
  await writeFile(
    config,
    JSON.stringify({
      identities: [
        {
          name: "agentry",
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ["Admin", "Read", "Write", "List", "Tagging"],
        },
      ],
    }),
    { mode: 0o600 },
  );
  const proc = new Supervised(
    "seaweedfs",
    weed,
    [
      "server",
      `-dir=${dir}`,
      "-ip=127.0.0.1",
      "-ip.bind=127.0.0.1",
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      "-master.volumeSizeLimitMB=64",
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      "-volume.max=20",
      "-filer",
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      "-s3",
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      `-s3.config=${config}`,
    ],
    dir,
  );
  proc.start();
  const endpoint = `http://127.0.0.1:${s3}`;
  const clientConfig = (): S3ClientConfig => ({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  const client = () => new S3Client(clientConfig());
  const probe = client();
  try {
    await waitFor(
      "SeaweedFS S3 to answer",
      async () => {
        await probe.send(new ListBucketsCommand({}));
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    await proc.stop();
    throw new Error(`${errorMessage(err)} (log: ${proc.logFile})`, {
      cause: err,
    });
  }
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    dir,
    client,
    clientConfig,
    async createBucket(name) {
      await waitFor(`bucket ${name}`, async () => {
        await probe.send(new CreateBucketCommand({ Bucket: name }));
        return true;
      });
    },
    pause: () => void (proc.pid && process.kill(proc.pid, "SIGSTOP")),
    resume: () => void (proc.pid && process.kill(proc.pid, "SIGCONT")),
    async stop({ keep = false } = {}) {
      probe.destroy();
      if (proc.pid && proc.running) process.kill(proc.pid, "SIGCONT");
      await proc.stop();
      if (!keep && !options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
