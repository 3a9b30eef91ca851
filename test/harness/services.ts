// Real PostgreSQL and Redis servers for the tests. When AGENTRY_TEST_POSTGRES_URL /
// AGENTRY_TEST_REDIS_URL are set (as .ci/run does) they are used as they are; otherwise,
// if the Debian server packages are installed, a private instance of each is started on
// a free loopback port in a temp dir. Under CI=true a missing server fails the run.
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort, Supervised, waitFor } from "./process.ts";
import { createConnection } from "node:net";

export interface Services {
  env: Record<string, string>;
  stop(opts?: { keep?: boolean }): Promise<void>;
}

const PG_ENV = "AGENTRY_TEST_POSTGRES_URL";
const REDIS_ENV = "AGENTRY_TEST_REDIS_URL";

export async function startServices({ verbose = false } = {}): Promise<Services> {
  const say = (m: string) => verbose && process.stderr.write(`[services] ${m}\n`);
  const env: Record<string, string> = {};
  const cleanups: ((keep: boolean) => Promise<void>)[] = [];
  const missing: string[] = [];

  const pgUrl = process.env[PG_ENV];
  if (pgUrl) {
    env[PG_ENV] = pgUrl;
  } else {
    const pg = await startPostgres();
    if (pg) {
      env[PG_ENV] = pg.url;
      cleanups.push(pg.stop);
      say(`postgres at ${pg.url}`);
    } else missing.push(`PostgreSQL (set ${PG_ENV} or install the Debian package postgresql)`);
  }

  const redisUrl = process.env[REDIS_ENV];
  if (redisUrl) {
    env[REDIS_ENV] = redisUrl;
  } else {
    const redis = await startRedis();
    if (redis) {
      env[REDIS_ENV] = redis.url;
      cleanups.push(redis.stop);
      say(`redis at ${redis.url}`);
    } else missing.push(`Redis (set ${REDIS_ENV} or install the Debian package redis-server)`);
  }

  if (missing.length > 0) {
    const msg = `missing test services: ${missing.join("; ")}`;
    if (process.env.CI === "true")
      throw new Error(`${msg}. CI=true: refusing to skip the tests that need them.`);
    say(`WARNING: ${msg}; tests that need them will be skipped`);
  }
  return {
    env,
    async stop({ keep = false } = {}) {
      for (const c of cleanups.reverse()) await c(keep);
    },
  };
}

function findPostgresBin(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, "bin", "initdb")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], "bin");
  }
  const which = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" });
  const path = which.stdout.trim();
  return path ? join(path, "..") : undefined;
}

/** A server a test may stop and start again on the same port and data (outage tests). */
export interface ServiceServer {
  url: string;
  /** Stops the server: PostgreSQL with a fast shutdown, Redis with SIGKILL (a crash). */
  halt: () => Promise<void>;
  /** Starts it again and waits until it accepts connections. */
  resume: () => Promise<void>;
  stop: (keep: boolean) => Promise<void>;
}

export async function startPostgres(): Promise<ServiceServer | undefined> {
  const bin = findPostgresBin();
  if (!bin) return undefined;
  // PostgreSQL refuses to run as root: run it as the postgres user Debian's package creates.
  const asRoot = userInfo().uid === 0;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  const dir = await mkdtemp(join(tmpdir(), "agentry-pg-"));
  if (asRoot) {
    const ids = execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim();
    const gid = execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim();
    chownSync(dir, Number(ids), Number(gid));
  }
  const data = join(dir, "data");
  const [initCmd, initArgs] = wrap(join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-sync",
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: "utf8" });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const [cmd, args] = wrap(join(bin, "postgres"), [
    "-D",
    data,
    "-p",
    String(port),
    "-h",
    "127.0.0.1",
    "-k",
    dir,
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=200",
  ]);
  const proc = new Supervised("postgres", cmd, args, dir);
  proc.start();
  await waitFor("postgres accepting connections", () => tcpOpen(port), { timeoutMs: 30_000 });
  // As root the server runs under runuser, which does not pass signals on: pg_ctl stops it.
  const halt = async () => {
    const [ctl, ctlArgs] = wrap(join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"]);
    spawnSync(ctl, ctlArgs, { encoding: "utf8" });
    await proc.stop("SIGINT");
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    halt,
    resume: async () => {
      proc.start();
      await waitFor("postgres accepting connections again", () => tcpOpen(port), { timeoutMs: 30_000 });
    },
    stop: async (keep: boolean) => {
      await halt();
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startRedis(): Promise<ServiceServer | undefined> {
  const which = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  const bin = which.stdout.trim();
  if (!bin) return undefined;
  const dir = await mkdtemp(join(tmpdir(), "agentry-redis-"));
  const port = await freePort();
  const proc = new Supervised(
    "redis",
    bin,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    dir,
  );
  proc.start();
  await waitFor("redis accepting connections", () => tcpOpen(port), { timeoutMs: 30_000 });
  return {
    url: `redis://127.0.0.1:${port}`,
    halt: () => proc.stop("SIGKILL"),
    resume: async () => {
      proc.start();
      await waitFor("redis accepting connections again", () => tcpOpen(port), { timeoutMs: 30_000 });
    },
    stop: async (keep: boolean) => {
      await proc.stop();
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}
