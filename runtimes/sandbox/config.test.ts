import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadSandboxConfig, type SandboxConfig } from "./config.ts";

const load = (argv: string[], env: NodeJS.ProcessEnv = {}, warn: (m: string) => void = () => {}) =>
  loadSandboxConfig(argv, env, warn) as SandboxConfig;

describe("sandbox config", () => {
  it("has the documented defaults", () => {
    assert.deepEqual(load([]), {
      listen: { host: "0.0.0.0", port: 8080 },
      metricsAddr: { host: "0.0.0.0", port: 9090 },
      root: "/workspaces",
      trustDir: "/var/run/agentry/trust",
      pod: undefined,
      maxWorkspaces: 32,
      allowLoadOverride: false,
      maxExecSeconds: 600,
      maxOutputBytes: 1048576,
      maxConcurrentExec: 8,
      maxConcurrentExecPerWorkspace: 4,
      maxQueuedExecPerWorkspace: 16,
      execQueueSeconds: 30,
      execIsolation: "auto",
      execUid: 20000,
      execGid: 20000,
      execLimits: { processes: 256, openFiles: 1024, fileBytes: 1073741824, cpuSeconds: 600 },
      maxFileBytes: 67108864,
      shutdownGraceSeconds: 25,
      sampleIntervalSeconds: 1,
      logLevel: "info",
      storeBroker: undefined,
      storeTokenFile: "/var/run/secrets/agentry.dev/store/token",
      flushQuietSeconds: 5,
      flushTimeoutSeconds: 120,
      wakeWaitSeconds: 30,
    });
  });

  it("takes the store broker's URL and refuses one that is not http(s)", () => {
    assert.equal(
      load([], { AGENTRY_SANDBOX_STORE_BROKER: "http://127.0.0.1:9" }).storeBroker,
      "http://127.0.0.1:9",
    );
    assert.throws(() => load(["--store-broker=ftp://x"]), /--store-broker must be an http\(s\) URL/);
  });

  it("reads the environment, and flags win over it", () => {
    const env = {
      AGENTRY_SANDBOX_LISTEN: "127.0.0.1:0",
      AGENTRY_SANDBOX_ROOT: "/tmp/ws",
      AGENTRY_TRUST_DIR: "/etc/trust",
      AGENTRY_POD_NAME: "fleet-sandbox-abc",
      AGENTRY_POD_NAMESPACE: "team",
      AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE: "true",
      AGENTRY_SANDBOX_MAX_WORKSPACES: "4",
    };
    const fromEnv = load([], env);
    assert.deepEqual(fromEnv.listen, { host: "127.0.0.1", port: 0 });
    assert.equal(fromEnv.root, "/tmp/ws");
    assert.equal(fromEnv.trustDir, "/etc/trust");
    assert.deepEqual(fromEnv.pod, { namespace: "team", name: "fleet-sandbox-abc" });
    assert.equal(fromEnv.allowLoadOverride, true);
    assert.equal(fromEnv.maxWorkspaces, 4);
    const flags = load(
      ["--listen", "[::1]:9000", "--max-workspaces=2", "--root", "/x", "--allow-load-override"],
      {},
    );
    assert.deepEqual(flags.listen, { host: "::1", port: 9000 });
    assert.equal(flags.maxWorkspaces, 2);
    assert.equal(flags.root, "/x");
    assert.equal(flags.allowLoadOverride, true);
    assert.equal(load(["--max-workspaces=3"], env).maxWorkspaces, 3);
  });

  it("gives one workspace half the exec slots unless told, and reads the exec settings", () => {
    assert.equal(load(["--max-concurrent-exec=1"]).maxConcurrentExecPerWorkspace, 1);
    assert.equal(load(["--max-concurrent-exec=5"]).maxConcurrentExecPerWorkspace, 2);
    const c = load(["--exec-isolation=session", "--exec-uid=5000", "--exec-max-processes=10"], {
      AGENTRY_SANDBOX_EXEC_GID: "6000",
      AGENTRY_SANDBOX_MAX_CONCURRENT_EXEC_PER_WORKSPACE: "8",
      AGENTRY_SANDBOX_EXEC_MAX_FILE_BYTES: "1024",
    });
    assert.deepEqual(
      [c.execIsolation, c.execUid, c.execGid, c.maxConcurrentExecPerWorkspace, c.execLimits.processes],
      ["session", 5000, 6000, 8, 10],
    );
    assert.equal(c.execLimits.fileBytes, 1024);
  });

  const bad: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    [
      "an unknown isolation",
      ["--exec-isolation=chroot"],
      {},
      /--exec-isolation \(AGENTRY_SANDBOX_EXEC_ISOLATION\) must be one of auto, namespace, session/,
    ],
    [
      "a workspace share above the sandbox's",
      ["--max-concurrent-exec=2", "--max-concurrent-exec-per-workspace=3"],
      {},
      /must not exceed --max-concurrent-exec/,
    ],
    [
      "root as the exec uid",
      ["--exec-uid=0"],
      {},
      /--exec-uid \(AGENTRY_SANDBOX_EXEC_UID\) must be an integer >= 1/,
    ],
    [
      "ids past the 32-bit range",
      ["--exec-gid=4294967290", "--max-workspaces=10"],
      {},
      /--exec-gid .* range/,
    ],
    ["a zero process limit", ["--exec-max-processes=0"], {}, /--exec-max-processes/],
    [
      "a zero workspace cap",
      ["--max-workspaces=0"],
      {},
      /--max-workspaces \(AGENTRY_SANDBOX_MAX_WORKSPACES\) must be an integer >= 1/,
    ],
    ["a fractional workspace cap", ["--max-workspaces=1.5"], {}, /--max-workspaces/],
    [
      "a negative exec limit",
      ["--max-exec=-1s"],
      {},
      /--max-exec \(AGENTRY_SANDBOX_MAX_EXEC\) must be a duration/,
    ],
    [
      "a listen without port",
      ["--listen=localhost"],
      {},
      /--listen \(AGENTRY_SANDBOX_LISTEN\) must be host:port/,
    ],
    ["a zero flush timeout", ["--flush-timeout=0s"], {}, /--flush-timeout .* must be longer than 0/],
    ["a port out of range", ["--listen=:70000"], {}, /--listen/],
    ["a bad boolean in env", [], { AGENTRY_SANDBOX_ALLOW_LOAD_OVERRIDE: "yes" }, /must be true or false/],
    ["an unknown flag", ["--bogus"], {}, /bogus/],
  ];
  for (const [name, argv, env, message] of bad)
    it(`refuses ${name}`, () => assert.throws(() => loadSandboxConfig(argv, env), message));

  it("answers help", () => assert.equal(loadSandboxConfig(["--help"], {}), "help"));

  it("takes Go-style durations, and the old *-seconds names and bare numbers with a warning", () => {
    const c = load([
      "--max-exec=90s",
      "--exec-queue-timeout=1m",
      "--shutdown-grace=0s",
      "--flush-quiet=500ms",
    ]);
    assert.deepEqual(
      [c.maxExecSeconds, c.execQueueSeconds, c.shutdownGraceSeconds, c.flushQuietSeconds],
      [90, 60, 0, 0.5],
    );
    const warnings: string[] = [];
    const old = load(
      ["--max-exec-seconds=60", "--sample-interval=2"],
      { AGENTRY_SANDBOX_FLUSH_TIMEOUT_SECONDS: "30" },
      (w) => warnings.push(w),
    );
    assert.deepEqual([old.maxExecSeconds, old.sampleIntervalSeconds, old.flushTimeoutSeconds], [60, 2, 30]);
    assert.deepEqual(warnings, [
      "--max-exec-seconds is deprecated; use --max-exec=1m (60 seconds)",
      "--sample-interval=2 has no unit and is read as seconds (deprecated): write 2s",
      "AGENTRY_SANDBOX_FLUSH_TIMEOUT_SECONDS is deprecated; use AGENTRY_SANDBOX_FLUSH_TIMEOUT=30s (30 seconds)",
    ]);
  });

  it("serves /metrics on its own address", () => {
    assert.deepEqual(load(["--metrics-addr=127.0.0.1:0"]).metricsAddr, { host: "127.0.0.1", port: 0 });
  });
});
