import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, type OperatorConfig } from "./config.ts";

const load = (argv: string[], env: NodeJS.ProcessEnv = {}, warn: (m: string) => void = () => {}) =>
  loadConfig(argv, env, warn) as OperatorConfig;

describe("operator config", () => {
  it("has durations in milliseconds from Go-style defaults", () => {
    const c = load([]);
    assert.deepEqual(
      [c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs, c.resyncPeriodMs, c.stallAfterMs],
      [15_000, 10_000, 2_000, 600_000, 300_000],
    );
    assert.deepEqual([c.signingKeyRotationMs, c.signingKeyGraceMs], [86_400_000, 3_600_000]);
    assert.deepEqual(c.healthAddr, { host: "0.0.0.0", port: 8081 });
    assert.equal(c.leaderElect, true);
    assert.equal(c.namespaces, undefined);
  });

  it("takes durations with units from flags and the environment", () => {
    const c = load(["--lease-duration=4s", "--retry-period=500ms"], {
      AGENTRY_RENEW_DEADLINE: "3s",
      AGENTRY_RESYNC_PERIOD: "1m30s",
      AGENTRY_WATCH_NAMESPACES: "a, b",
    });
    assert.deepEqual(
      [c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs, c.resyncPeriodMs],
      [4000, 3000, 500, 90_000],
    );
    assert.deepEqual(c.namespaces, ["a", "b"]);
  });

  it("still reads the old unit-less seconds, warning once for each", () => {
    const warnings: string[] = [];
    const c = load(["--lease-duration=15", "--retry-period=0.5"], { AGENTRY_RESYNC_PERIOD: "600" }, (w) =>
      warnings.push(w),
    );
    assert.deepEqual([c.leaseDurationMs, c.retryPeriodMs, c.resyncPeriodMs], [15_000, 500, 600_000]);
    assert.deepEqual(warnings, [
      "--lease-duration=15 has no unit and is read as seconds (deprecated): write 15s",
      "--retry-period=0.5 has no unit and is read as seconds (deprecated): write 500ms",
      "AGENTRY_RESYNC_PERIOD=600 has no unit and is read as seconds (deprecated): write 10m",
    ]);
  });

  const bad: [string[], RegExp][] = [
    [["--retry-period=10ms"], /--retry-period \(AGENTRY_RETRY_PERIOD\) must be at least 100ms/],
    [["--lease-duration=0s"], /must be longer than 0/],
    [
      ["--signing-key-grace=2h", "--signing-key-rotation=1h"],
      /must not be longer than --signing-key-rotation \(1h\)/,
    ],
    [["--health-addr=8081"], /--health-addr .* must be host:port/],
    [["--log-level=loud"], /--log-level .* must be one of error, warn, info/],
    [["--leader-elect=maybe"], /must be true or false/],
    [["--default-store-endpoint=http://s3:9000"], /needs --default-store-bucket and --default-store-secret/],
  ];
  for (const [argv, re] of bad) it(`refuses ${argv.join(" ")}`, () => assert.throws(() => load(argv), re));

  it("answers help", () => assert.equal(loadConfig(["--help"], {}), "help"));
});
