import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  commandEnv,
  confinedArgv,
  envBlob,
  parseStatus,
  SAFE_PATH,
  SUPERVISOR,
  type Confinement,
} from "./confine.ts";

const limits = { processes: 64, openFiles: 128, fileBytes: 4096, cpuSeconds: 7 };
const prlimit = ["prlimit", "--nproc=64", "--nofile=128", "--fsize=4096", "--cpu=7", "--core=0", "--"];
const setpriv = ["setpriv", "--reuid=20003", "--regid=30003", "--clear-groups", "--no-new-privs", "--"];
const unshare = ["unshare", "--pid", "--fork", "--mount-proc", "--"];
const perl = (prctl: string) => ["perl", "-e", SUPERVISOR, "--", prctl, "ls", "-l"];

describe("confinedArgv", () => {
  const table: [string, Confinement, string, string[]][] = [
    [
      "root with namespaces: own PID namespace, workspace user, limits; no subreaper needed",
      { isolation: "namespace", limits, user: { uid: 20003, gid: 30003 } },
      "x64",
      [...unshare, ...setpriv, ...prlimit, ...perl("0")],
    ],
    [
      "root without namespaces: workspace user, limits, subreaper",
      { isolation: "session", limits, user: { uid: 20003, gid: 30003 } },
      "x64",
      [...setpriv, ...prlimit, ...perl("157")],
    ],
    [
      "not root: limits and subreaper only; the process limit counts what the uid runs already",
      { isolation: "session", limits, processesInUse: 36 },
      "arm64",
      [...prlimit.map((a) => (a === "--nproc=64" ? "--nproc=100" : a)), ...perl("167")],
    ],
    [
      "an architecture without a known prctl number: no subreaper",
      { isolation: "session", limits },
      "mips",
      [...prlimit, ...perl("0")],
    ],
  ];
  for (const [name, c, arch, argv] of table)
    it(name, () => assert.deepEqual(confinedArgv(["ls", "-l"], c, arch), argv));

  it("puts the command's argv last, untouched", () => {
    const hostile = ["--", "-e", "$(id)", "a b", ""];
    assert.deepEqual(confinedArgv(hostile, { isolation: "session", limits }).slice(-5), hostile);
  });
});

describe("the command's environment", () => {
  it("is PATH, HOME and LANG plus the request's, which may override them", () => {
    assert.deepEqual(commandEnv("/ws/a"), { PATH: SAFE_PATH, HOME: "/ws/a", LANG: "C.UTF-8" });
    assert.deepEqual(commandEnv("/ws/a", { FOO: "1", LANG: "de_DE.UTF-8" }), {
      PATH: SAFE_PATH,
      HOME: "/ws/a",
      LANG: "de_DE.UTF-8",
      FOO: "1",
    });
  });

  it("reaches the supervisor as NUL-separated pairs, empty values kept", () => {
    assert.equal(envBlob({ A: "1", B: "", C: "x=y z" }), "A\u00001\u0000B\u0000\u0000C\u0000x=y z\u0000");
    assert.equal(envBlob({}), "");
  });
});

describe("parseStatus", () => {
  const table: [string, ReturnType<typeof parseStatus>][] = [
    ["exit 0\n", { exitCode: 0, signal: null }],
    ["exit 127", { exitCode: 127, signal: null }],
    ["signal 9\n", { exitCode: null, signal: "SIGKILL" }],
    ["signal 11", { exitCode: null, signal: "SIGSEGV" }],
    ["signal 25", { exitCode: null, signal: "SIGXFSZ" }],
    ["exit -1", undefined],
    ["exit 1 2", undefined],
    ["bogus", undefined],
    ["", undefined],
  ];
  for (const [line, expected] of table)
    it(`reads ${JSON.stringify(line)}`, () => assert.deepEqual(parseStatus(line), expected));
});
