import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, type GatewayConfig } from "./config.ts";

const admission = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  (loadConfig(argv, env) as GatewayConfig).admission;

describe("gateway admission flags", () => {
  it("default to the webhook's policy without Secret checks", () =>
    assert.deepEqual(admission([]), {
      policy: { allowedRegistries: [], allowLatest: false, largeFleetReplicas: 100 },
      checkSecretRefs: false,
    }));

  it("read flags and the webhook's environment variables", () => {
    assert.deepEqual(
      admission([
        "--allowed-registries= ghcr.io/acme, quay.io",
        "--allow-latest=true",
        "--large-fleet-replicas=5",
      ]),
      {
        policy: { allowedRegistries: ["ghcr.io/acme", "quay.io"], allowLatest: true, largeFleetReplicas: 5 },
        checkSecretRefs: false,
      },
    );
    assert.equal(admission([], { AGENTRY_CHECK_SECRET_REFS: "true" }).checkSecretRefs, true);
  });

  const bad: [string[], RegExp][] = [
    [["--allow-latest=yes"], /--allow-latest \(AGENTRY_ALLOW_LATEST\) must be true or false/],
    [
      ["--large-fleet-replicas=0"],
      /--large-fleet-replicas \(AGENTRY_LARGE_FLEET_REPLICAS\) must be an integer >= 1/,
    ],
    [["--max-exec=1500ms"], /--max-exec must be whole seconds/],
  ];
  for (const [argv, want] of bad) it(argv.join(" "), () => assert.throws(() => loadConfig(argv, {}), want));
});

describe("gateway abuse limits", () => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(argv, env) as GatewayConfig;

  it("default to limits per address, TokenReviews per address, stream re-checks and a stream cap", () => {
    const c = cfg([]);
    assert.deepEqual(
      [
        c.addressRate,
        c.addressBurst,
        c.reviewRate,
        c.reviewBurst,
        c.trustProxy,
        c.sseReauthorizeMs,
        c.sseMaxStreams,
      ],
      [100, 200, 5, 20, false, 30_000, 10],
    );
  });

  const trust: [string, GatewayConfig["trustProxy"]][] = [
    ["", false],
    ["false", false],
    ["1", 1],
    ["loopback, 10.0.0.0/8", "loopback, 10.0.0.0/8"],
  ];
  for (const [value, want] of trust)
    it(`--trust-proxy=${value || '""'}`, () =>
      assert.deepEqual(cfg([`--trust-proxy=${value}`]).trustProxy, want));

  it("read the environment", () => {
    const c = cfg([], {
      AGENTRY_TOKEN_REVIEW_RATE: "0.5",
      AGENTRY_SSE_MAX_STREAMS: "3",
      AGENTRY_SSE_REAUTHORIZE: "2s",
    });
    assert.deepEqual([c.reviewRate, c.sseMaxStreams, c.sseReauthorizeMs], [0.5, 3, 2000]);
  });
});

describe("gateway durations", () => {
  const cfg = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(argv, env) as GatewayConfig;

  it("are Go-style, with the old day and hour flags read in their units and a warning", () => {
    const c = cfg(["--audit-retention=720h", "--idempotency-ttl=90m", "--heartbeat=500ms", "--max-exec=2m"]);
    assert.deepEqual(
      [c.auditRetentionMs, c.idempotencyTtlMs, c.heartbeatMs, c.maxExecSeconds],
      [720 * 3_600_000, 90 * 60_000, 500, 120],
    );
    const d = cfg(["--audit-retention-days=0", "--idempotency-ttl-hours=48", "--max-exec-seconds=60"], {
      AGENTRY_SSE_HEARTBEAT: "15",
    });
    assert.deepEqual(
      [d.auditRetentionMs, d.idempotencyTtlMs, d.heartbeatMs, d.maxExecSeconds],
      [0, 48 * 3_600_000, 15_000, 60],
    );
  });

  it("bound the wait for a workspace waking from idleness", () => {
    assert.equal(cfg([]).wakeWaitMs, 30_000);
    assert.equal(cfg(["--wake-wait=0s"]).wakeWaitMs, 0);
    assert.equal(cfg([], { AGENTRY_WAKE_WAIT: "2m" }).wakeWaitMs, 120_000);
    assert.throws(() => cfg(["--wake-wait=soon"]), /wake-wait/);
  });

  it("serve /metrics on a port of its own", () => {
    assert.deepEqual(cfg([]).metricsAddr, { host: "0.0.0.0", port: 9090 });
    assert.deepEqual(cfg(["--metrics-addr=127.0.0.1:0"]).metricsAddr, { host: "127.0.0.1", port: 0 });
  });
});
