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
    [["--allow-latest=yes"], /--allow-latest must be true or false/],
    [["--large-fleet-replicas=0"], /--large-fleet-replicas must be a number >= 1/],
  ];
  for (const [argv, want] of bad) it(argv.join(" "), () => assert.throws(() => loadConfig(argv, {}), want));
});
