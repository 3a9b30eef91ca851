// How a command is confined: the chain of small programs that wraps it. Pure builders,
// tested without running anything; exec.ts spawns what they build.
//
//   namespace (runtime is root and may create namespaces):
//     unshare --pid --fork --mount-proc   own PID namespace and /proc: the command sees only
//                                         its own processes, and when the namespace's first
//                                         process dies the kernel kills every other one
//     setpriv --reuid --regid             the workspace's own uid/gid, no supplementary
//                                         groups, no new privileges
//     prlimit                             RLIMIT_NPROC, NOFILE, FSIZE, CPU, CORE
//     perl -e SUPERVISOR                  reads the environment from fd 3, forks the command,
//                                         reaps, reports its exit status on fd 3
//   session (any other runtime): the runtime spawns the chain in a new session; setpriv
//     only when the runtime is root; the supervisor makes itself a child subreaper, so a
//     process whose parent exits (a double fork, `setsid`) stays in its tree.
//
// unshare, setpriv and prlimit are util-linux, perl is perl-base: all in Debian's essential
// set, so in every Debian-based image (the sandbox image's base included).
import { constants } from "node:os";

export type Isolation = "namespace" | "session";

export interface ExecLimits {
  /** RLIMIT_NPROC: processes (threads) of the command's real uid. */
  processes: number;
  /** RLIMIT_NOFILE */
  openFiles: number;
  /** RLIMIT_FSIZE: the largest file a process may write, in bytes. */
  fileBytes: number;
  /** RLIMIT_CPU: CPU seconds of each process. */
  cpuSeconds: number;
}

export interface ExecUser {
  uid: number;
  gid: number;
}

export interface Confinement {
  isolation: Isolation;
  limits: ExecLimits;
  /** Switch to this user (the runtime must be root); absent: the runtime's own user. */
  user?: ExecUser | undefined;
  /**
   * Added to the process limit: processes the command's uid already has (the runtime's own
   * when commands share its uid, since RLIMIT_NPROC counts all processes of a uid).
   */
  processesInUse?: number;
}

export const SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** prctl(2) syscall numbers by Node's process.arch, for PR_SET_CHILD_SUBREAPER. */
const PRCTL_SYSCALL: Record<string, number> = {
  x64: 157,
  arm64: 167,
  riscv64: 167,
  loong64: 167,
  arm: 172,
  ia32: 172,
  s390x: 172,
  ppc64: 171,
};

/**
 * The supervisor, run by perl. argv: <prctl syscall number or 0> <program> <args...>.
 * fd 3 is a socket to the runtime: it first carries the environment (NAME\0VALUE\0...,
 * then EOF), later "exit N" or "signal N" for the command. The command never sees fd 3.
 * It runs with oom_score_adj 1000, so under memory pressure the kernel picks it, not the
 * runtime. The supervisor keeps reaping (and, with the subreaper set, adopting) until no
 * process of the tree is left or the runtime kills it.
 */
export const SUPERVISOR = `use strict; use warnings; use POSIX (); use Fcntl qw(F_SETFD FD_CLOEXEC);
my ($prctl, @cmd) = @ARGV;
open(my $ctl, "+<&=", 3) or POSIX::_exit(125);
fcntl($ctl, F_SETFD, FD_CLOEXEC);
my $blob = do { local $/; readline($ctl) } // "";
my @kv = split /\\0/, $blob, -1;
pop @kv;
%ENV = @kv;
syscall($prctl + 0, 36, 1, 0, 0, 0) if $prctl;
my $child = fork() // POSIX::_exit(125);
if ($child == 0) {
  if (open(my $adj, ">", "/proc/self/oom_score_adj")) { print $adj "1000"; close $adj; }
  { no warnings "exec"; exec { $cmd[0] } @cmd; }
  my $missing = $!{ENOENT};
  print STDERR "agentry-sandbox: $cmd[0]: " . ($missing ? "command not found" : "cannot run ($!)") . "\\n";
  POSIX::_exit($missing ? 127 : 126);
}
while ((my $done = waitpid(-1, 0)) > 0) {
  next unless $done == $child;
  my $st = $?;
  syswrite($ctl, ($st & 127) ? "signal " . ($st & 127) . "\\n" : "exit " . ($st >> 8) . "\\n");
}
POSIX::_exit(0);
`;

/** The argv that runs `command` under `c`. The environment goes to fd 3 (envBlob). */
export function confinedArgv(
  command: readonly string[],
  c: Confinement,
  arch: string = process.arch,
): string[] {
  const argv: string[] = [];
  if (c.isolation === "namespace") argv.push("unshare", "--pid", "--fork", "--mount-proc", "--");
  if (c.user)
    argv.push(
      "setpriv",
      `--reuid=${c.user.uid}`,
      `--regid=${c.user.gid}`,
      "--clear-groups",
      "--no-new-privs",
      "--",
    );
  const l = c.limits;
  argv.push(
    "prlimit",
    `--nproc=${l.processes + (c.processesInUse ?? 0)}`,
    `--nofile=${l.openFiles}`,
    `--fsize=${l.fileBytes}`,
    `--cpu=${l.cpuSeconds}`,
    "--core=0",
    "--",
  );
  // In a PID namespace the supervisor is process 1, everything's reaper already.
  const prctl = c.isolation === "namespace" ? 0 : (PRCTL_SYSCALL[arch] ?? 0);
  argv.push("perl", "-e", SUPERVISOR, "--", String(prctl), ...command);
  return argv;
}

/** The environment a command sees: PATH, HOME (its workspace), LANG, plus the request's. */
export function commandEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SAFE_PATH, HOME: home, LANG: "C.UTF-8", ...extra };
}

/** The environment as the supervisor reads it from fd 3. Names and values hold no NUL. */
export function envBlob(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}\0${v}\0`)
    .join("");
}

/** The supervisor's report: "exit N" or "signal N"; undefined for anything else. */
export function parseStatus(
  line: string,
): { exitCode: number; signal: null } | { exitCode: null; signal: string } | undefined {
  const m = /^(exit|signal) (\d{1,3})$/.exec(line.trim());
  if (!m) return undefined;
  const n = Number(m[2]);
  if (m[1] === "exit") return { exitCode: n, signal: null };
  const name = Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
  return { exitCode: null, signal: name ?? `SIG${n}` };
}
