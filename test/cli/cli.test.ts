// The agentry CLI as a user runs it: a subprocess against the live gateway on the real control
// plane, configured by the environment or by a config file; tables, -o json|yaml, -A, watch,
// exit codes (1 for the gateway's refusal, 2 for usage), completion. Also the client's
// example (clients/typescript/example.ts), type-checked and run against the same gateway.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { testNamespace, waitFor } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { ADMIN_TOKEN, startGateway } from "../gateway/harness.ts";
import { agentry, CLI, run } from "./harness.ts";

const fleetYaml = (name: string) => `apiVersion: agentry.dev/v1alpha1
kind: SandboxFleet
metadata:
  name: ${name}
spec:
  template:
    image: busybox:1.36
  minReplicas: 0
  maxReplicas: 2
`;

describe("agentry CLI against the live gateway", () => {
  it("creates, gets, watches and deletes; exit codes follow the outcome", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const env = { AGENTRY_GATEWAY_URL: gw.url, AGENTRY_TOKEN: ADMIN_TOKEN, AGENTRY_NAMESPACE: ns };

    // watch first, so it sees the create
    const watcher = spawn(process.execPath, ["--import", "tsx", CLI, "watch", "sbf"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const seen: string[] = [];
    createInterface({ input: watcher.stdout }).on("line", (l) => seen.push(l));
    t.after(() => void watcher.kill("SIGINT"));

    const created = await agentry(
      ["create", "-f", "-"],
      env,
      fleetYaml("cli-a") + "---\n" + fleetYaml("cli-b"),
    );
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /sandboxfleet\/cli-a created\nsandboxfleet\/cli-b created/);

    const table = await agentry(["get", "sandboxfleets"], env);
    assert.equal(table.code, 0, table.err);
    const lines = table.out.trim().split("\n");
    assert.match(lines[0]!, /^NAME\s+.*AGE$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      ["cli-a", "cli-b"],
    );

    const json = JSON.parse((await agentry(["get", "sbf", "cli-a", "-o", "json"], env)).out);
    assert.equal(json.metadata.name, "cli-a");
    assert.equal(json.spec.maxReplicas, 2);
    const yaml = await agentry(["get", "sbf", "-o", "yaml", "-l", "nope=x"], env);
    assert.equal(yaml.code, 0, yaml.err);
    assert.match(yaml.out, /kind: List\nitems: \[\]/);
    const all = await agentry(["get", "sandboxfleets", "-A"], env);
    assert.match(all.out, new RegExp(`^NAMESPACE\\s+NAME`));
    assert.match(all.out, new RegExp(`${ns}\\s+cli-b`));

    // Listed when the stream opened, or seen as they were created: both are there.
    await waitFor("watch to print both fleets as ADDED", () =>
      new Set(seen.filter((l) => /^ADDED\s+sandboxfleet\/cli-[ab]$/.test(l))).size === 2 ? true : undefined,
    );

    const deleted = await agentry(["delete", "sbf", "cli-a"], env);
    assert.equal(deleted.code, 0, deleted.err);
    assert.match(deleted.out, /sandboxfleet\/cli-a deleted/);
    await waitFor("watch to print the deletion", () =>
      seen.some((l) => /^DELETED\s+sandboxfleet\/cli-a$/.test(l)) ? true : undefined,
    );
    const missing = await agentry(["get", "sbf", "cli-a"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /Error from the gateway \(404\)/);

    const invalid = await agentry(["create", "-f", "-"], env, fleetYaml("Bad_Name"));
    assert.equal(invalid.code, 1);
    assert.match(invalid.err, /\(422\).*metadata\.name/);

    assert.equal((await agentry(["get", "nonsense"], env)).code, 2);
    assert.equal((await agentry(["frobnicate"], env)).code, 2);
    assert.equal((await agentry(["get", "sbf"], { ...env, AGENTRY_TOKEN: "wrong" })).code, 1);

    // A config file instead of the environment.
    const dir = mkdtempSync(join(tmpdir(), "agentry-cli-"));
    const config = join(dir, "config");
    const setCtx = await agentry(
      [
        "config",
        "set-context",
        "test",
        "--server",
        gw.url,
        "--default-namespace",
        ns,
        "--use",
        "--config",
        config,
      ],
      {},
    );
    assert.equal(setCtx.code, 0, setCtx.err);
    writeFileSync(join(dir, "token"), `${ADMIN_TOKEN}\n`);
    const tokenFile = await agentry(["config", "set-context", "test", "--token-file", join(dir, "token")], {
      AGENTRY_CONFIG: config,
    });
    assert.equal(tokenFile.code, 0, tokenFile.err);
    const fromFile = await agentry(["get", "ws"], { AGENTRY_CONFIG: config });
    assert.equal(fromFile.code, 0, fromFile.err);
    assert.match(fromFile.err, new RegExp(`No workspaces found in namespace ${ns}`));
    const names = await agentry(["get", "sbf", "-o", "name"], { AGENTRY_CONFIG: config });
    assert.equal(names.out.trim(), "sandboxfleet/cli-b");

    const completion = await agentry(["completion", "bash"], {});
    assert.equal(completion.code, 0);
    assert.match(completion.out, /complete -F _agentry agentry/);
    assert.match(completion.out, /sandboxfleets sbf/);
  });

  it("runs the client's example, type-checked, against the gateway", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t);
    const tsc = await run(
      process.execPath,
      [
        join(repoRoot, "node_modules", "typescript", "bin", "tsc"),
        "--noEmit",
        "-p",
        join(repoRoot, "clients", "typescript"),
      ],
      {},
    );
    assert.equal(tsc.code, 0, tsc.out + tsc.err);
    const r = await run(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "clients", "typescript", "example.ts")],
      {
        AGENTRY_GATEWAY_URL: gw.url,
        AGENTRY_TOKEN: ADMIN_TOKEN,
        AGENTRY_NAMESPACE: ns,
      },
    );
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      new RegExp(
        `created ${ns}/example-fleet\\nfleets: example-fleet \\(max 2\\)\\nmaxReplicas now 3\\ndeleted`,
      ),
    );
  });
});
