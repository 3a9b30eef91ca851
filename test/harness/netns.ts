// Loopback only, enforced by the kernel: the test runner and the benchmarks re-run
// themselves in a fresh network namespace whose only interface is loopback (`unshare -n`,
// then `ip link set lo up`), so a stray dial to a fake pod IP, a ClusterIP or the internet
// fails at once with ENETUNREACH instead of leaving the machine. Everything they start
// (control plane, PostgreSQL, Redis, operator, runtimes) is started inside.
//
// It needs root (CI and the dev machines here). Inside, AGENTRY_NETNS=loopback. Without
// root, or with AGENTRY_LOOPBACK_NETNS=0, or when external service URLs are given (servers
// in the outer namespace, unreachable from inside: .ci/run enters the namespace itself and
// starts them there), the run stays where it is and says so; under CI=true that is an error.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const NETNS_ENV = "AGENTRY_NETNS";

/** True when this process runs in the loopback-only namespace. */
export function inLoopbackNetns(): boolean {
  return process.env[NETNS_ENV] === "loopback";
}

function ipCommand(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]))
    if (dir && existsSync(`${dir}/ip`)) return `${dir}/ip`;
  return undefined;
}

/** Why this run cannot enter the namespace, or undefined when it can. */
function obstacle(): string | undefined {
  if (process.env.AGENTRY_LOOPBACK_NETNS === "0") return "AGENTRY_LOOPBACK_NETNS=0";
  if (process.getuid?.() !== 0) return "not root (unshare -n needs CAP_SYS_ADMIN)";
  const external = ["AGENTRY_TEST_POSTGRES_URL", "AGENTRY_TEST_REDIS_URL"].filter((e) => process.env[e]);
  if (external.length)
    return `${external.join(" and ")} point at servers outside it (start them inside, as .ci/run does)`;
  if (!ipCommand()) return "the ip command (Debian package iproute2) is missing";
  const probe = spawnSync("unshare", ["-n", "true"], { stdio: "ignore" });
  if (probe.status !== 0) return "unshare -n failed (util-linux missing, or no permission here)";
  return undefined;
}

/**
 * Re-runs this program inside the loopback-only namespace and exits with its status; returns
 * when already inside or when the machine does not allow it (after saying why).
 */
export async function enterLoopbackNetns(what: string): Promise<void> {
  if (inLoopbackNetns()) return;
  const why = obstacle();
  if (why) {
    const msg = `${what} runs WITHOUT the loopback-only network namespace: ${why}`;
    // Under CI only an explicit opt-out is accepted.
    if (process.env.CI === "true" && process.env.AGENTRY_LOOPBACK_NETNS !== "0") {
      process.stderr.write(`[netns] ERROR: ${msg}. CI=true requires it.\n`);
      process.exit(1);
    }
    process.stderr.write(`[netns] WARNING: ${msg}\n`);
    return;
  }
  process.stderr.write(`[netns] ${what}: entering a network namespace with only loopback\n`);
  const child = spawn(
    "unshare",
    [
      "-n",
      "--",
      "sh",
      "-c",
      `${ipCommand()} link set lo up && exec "$@"`,
      "sh",
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: "inherit", env: { ...process.env, [NETNS_ENV]: "loopback" } },
  );
  // Ctrl-C reaches the whole process group; the child decides how to stop.
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve) =>
    child.once("exit", (c, signal) => resolve(c ?? (signal ? 128 + 15 : 1))),
  );
  process.exit(code);
}
