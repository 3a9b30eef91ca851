import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig, type WebhookConfig } from "./config.ts";

const load = (argv: string[], warn: (m: string) => void = () => {}) =>
  loadConfig(argv, {}, warn) as WebhookConfig;

describe("webhook config", () => {
  it("has Go-style duration defaults", () => {
    const c = load([]);
    assert.deepEqual(
      [c.timeoutSeconds, c.lookupTimeoutMs, c.certValidityMs, c.certRotateBeforeMs],
      [5, 3000, 8760 * 3_600_000, 720 * 3_600_000],
    );
  });

  it("takes --timeout as a duration, and the old --timeout-seconds with a warning", () => {
    assert.equal(load(["--timeout=10s"]).timeoutSeconds, 10);
    const warnings: string[] = [];
    assert.equal(load(["--timeout-seconds=2"], (w) => warnings.push(w)).timeoutSeconds, 2);
    assert.deepEqual(warnings, ["--timeout-seconds is deprecated; use --timeout=2s (2 seconds)"]);
  });

  const bad: [string[], RegExp][] = [
    [["--timeout=31s"], /--timeout must be at most 30s/],
    [["--timeout=1500ms"], /--timeout must be whole seconds/],
    [["--cert-rotate-before=9000h"], /--cert-rotate-before must be shorter than --cert-validity/],
    [["--failure-policy=Maybe"], /--failure-policy must be one of Fail, Ignore/],
  ];
  for (const [argv, re] of bad) it(`refuses ${argv.join(" ")}`, () => assert.throws(() => load(argv), re));
});
