// The agentry.dev/v1alpha1 API as a user meets it through kubectl, on the real apiserver:
// CRDs installed (CEL within the cost budget), examples apply, printer columns, explain
// text, defaults, the scale subresource, and invalid objects rejected by field.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { repoRoot } from "../harness/paths.ts";
import { invalidCases, validSpecs, type InvalidCase } from "./invalid-corpus.ts";

const manifest = (kind: string, name: string, spec: unknown, namespace: string) =>
  JSON.stringify({ apiVersion: "agentry.dev/v1alpha1", kind, metadata: { name, namespace }, spec });

async function getJson<T>(args: string[]): Promise<T> {
  const res = await kubectl([...args, "-o", "json"]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as T;
}

describe("agentry.dev/v1alpha1 CRDs", () => {
  it("are established with names, short names and the agentry category", async () => {
    type Crd = {
      metadata: { name: string };
      spec: {
        names: { shortNames: string[]; categories: string[] };
        versions: { subresources: Record<string, unknown> }[];
      };
      status: { conditions: { type: string; status: string }[] };
    };
    const list = await getJson<{ items: Crd[] }>(["get", "crd", "-l", "app.kubernetes.io/part-of=agentry"]);
    const byName = new Map(list.items.map((c) => [c.metadata.name, c]));
    const expected: [string, string][] = [
      ["agentruntimes.agentry.dev", "ar"],
      ["pipelines.agentry.dev", "pl"],
      ["sandboxfleets.agentry.dev", "sbf"],
      ["workspaces.agentry.dev", "ws"],
    ];
    for (const [name, short] of expected) {
      const crd = byName.get(name);
      assert.ok(crd, `${name} installed`);
      assert.ok(
        crd.status.conditions.some((c) => c.type === "Established" && c.status === "True"),
        `${name} established`,
      );
      assert.deepEqual(crd.spec.names.shortNames, [short]);
      assert.deepEqual(crd.spec.names.categories, ["agentry"]);
      assert.ok("status" in crd.spec.versions[0]!.subresources, `${name} has the status subresource`);
    }
    assert.ok("scale" in byName.get("sandboxfleets.agentry.dev")!.spec.versions[0]!.subresources);
  });

  it("accept every example, and kubectl get shows them", async (t) => {
    const namespace = await testNamespace(t);
    const files = (await readdir(join(repoRoot, "examples"), { recursive: true })).filter((f) =>
      f.endsWith(".yaml"),
    );
    assert.ok(files.length >= 9, `examples found: ${files.join(", ")}`);
    const res = await kubectl(["apply", "-n", namespace, "-R", "-f", join(repoRoot, "examples")]);
    assert.equal(res.code, 0, res.stderr);
    const all = await kubectl(["get", "agentry", "-n", namespace, "-o", "name"]);
    assert.equal(all.code, 0, all.stderr);
    const names = all.stdout.trim().split("\n").sort();
    for (const expected of [
      "agentruntime.agentry.dev/research-agent",
      "agentruntime.agentry.dev/coder",
      "agentruntime.agentry.dev/reviewer",
      "pipeline.agentry.dev/nightly-report",
      "pipeline.agentry.dev/reindex-once",
      "pipeline.agentry.dev/nightly-review",
      "pipeline.agentry.dev/bootstrap-index",
      "sandboxfleet.agentry.dev/default-fleet",
      "sandboxfleet.agentry.dev/team-fleet",
      "workspace.agentry.dev/alice-notebook",
      "workspace.agentry.dev/alice-app",
      "workspace.agentry.dev/alice-docs",
      "workspace.agentry.dev/bob-service",
    ]) {
      assert.ok(names.includes(expected), `kubectl get agentry lists ${expected}`);
    }
  });

  it("print operational columns in kubectl get", async (t) => {
    const namespace = await testNamespace(t);
    await kubectl(["apply", "-n", namespace, "-R", "-f", join(repoRoot, "examples", "platform")]);
    const header = async (resource: string) => {
      const res = await kubectl(["get", resource, "-n", namespace]);
      assert.equal(res.code, 0, res.stderr);
      return res.stdout
        .split("\n")[0]!
        .trim()
        .split(/\s{2,}/);
    };
    assert.deepEqual(await header("sbf"), [
      "NAME",
      "READY",
      "DESIRED",
      "MIN",
      "MAX",
      "WORKSPACES",
      "CAPACITY",
      "AGE",
    ]);
    assert.deepEqual(await header("ar"), ["NAME", "PHASE", "READY", "ENDPOINT", "AGE"]);
    assert.deepEqual(await header("pl"), [
      "NAME",
      "SCHEDULE",
      "KIND",
      "PHASE",
      "LAST RUN",
      "LAST FAILURE",
      "AGE",
    ]);
    assert.deepEqual(await header("ws"), ["NAME", "FLEET", "OWNER", "SANDBOX", "PHASE", "AGE"]);
    const fleet = await kubectl(["get", "sbf", "team-fleet", "-n", namespace, "--no-headers"]);
    // Status columns stay empty until the operator reports; MIN and MAX come from the spec.
    assert.match(fleet.stdout, /^team-fleet\s+2\s+20\s+\d+s\s*$/);
    const ws = await kubectl(["get", "ws", "bob-service", "-n", namespace, "--no-headers"]);
    assert.match(ws.stdout, /^bob-service\s+team-fleet\s+bob\s/);
  });

  it("explain every field in kubectl explain", async () => {
    const cases: [string, RegExp][] = [
      ["agentruntime.spec.port", /Port the agent's HTTP API listens on/],
      ["ar.spec.model.credentialsSecretRef", /never copied/],
      ["pipeline.spec.schedule", /Cron schedule/],
      ["sandboxfleet.spec.pressure.cpu", /above which a sandbox is under pressure/],
      ["sbf.spec.replicas", /scale subresource/],
      ["workspace.spec.fleetRef", /Immutable/],
      ["ws.status.sandboxPod", /Sandbox pod the workspace is placed on/],
    ];
    for (const [path, expected] of cases) {
      const res = await kubectl(["explain", path]);
      assert.equal(res.code, 0, `${path}: ${res.stderr}`);
      assert.match(res.stdout.replace(/\s+/g, " "), expected, `kubectl explain ${path}`);
    }
  });

  it("apply defaults that show on read-back", async (t) => {
    const namespace = await testNamespace(t);
    for (const [kind, spec] of Object.entries(validSpecs)) {
      const res = await kubectl(["create", "-f", "-"], manifest(kind, "defaults", spec, namespace));
      assert.equal(res.code, 0, res.stderr);
    }
    type Spec = Record<string, unknown>;
    const read = async (r: string) =>
      (await getJson<{ spec: Spec }>(["get", r, "defaults", "-n", namespace])).spec;
    const fleet = await read("sbf");
    assert.deepEqual(
      {
        minReplicas: fleet.minReplicas,
        maxReplicas: fleet.maxReplicas,
        warmEmpty: fleet.warmEmpty,
        maxWorkspacesPerSandbox: fleet.maxWorkspacesPerSandbox,
        pressure: fleet.pressure,
        ownerlessPool: fleet.ownerlessPool,
        samplingInterval: fleet.samplingInterval,
        scaleUpWindow: fleet.scaleUpWindow,
        scaleDownWindow: fleet.scaleDownWindow,
        cooldown: fleet.cooldown,
      },
      {
        minReplicas: 1,
        maxReplicas: 10,
        warmEmpty: 1,
        maxWorkspacesPerSandbox: 32,
        pressure: { cpu: 0.8, memory: 0.8 },
        ownerlessPool: "shared",
        samplingInterval: "1s",
        scaleUpWindow: 2,
        scaleDownWindow: 2,
        cooldown: "1s",
      },
    );
    assert.equal((fleet.template as Spec).port, 8080);
    const agent = await read("ar");
    assert.equal(agent.port, 8080);
    assert.equal(agent.suspended, false);
    const pipeline = await read("pl");
    assert.equal(pipeline.schedule, "");
    assert.equal(pipeline.concurrencyPolicy, "Forbid");
    assert.equal(pipeline.backoffLimit, 1);
    const workspace = await read("ws");
    assert.equal(workspace.suspended, false);
  });

  it("scale a SandboxFleet with kubectl scale", async (t) => {
    const namespace = await testNamespace(t);
    await kubectl(
      ["create", "-f", "-"],
      manifest("SandboxFleet", "pool", validSpecs.SandboxFleet, namespace),
    );
    const res = await kubectl(["scale", "sbf/pool", "-n", namespace, "--replicas=3"]);
    assert.equal(res.code, 0, res.stderr);
    const fleet = await getJson<{ spec: { replicas: number } }>(["get", "sbf", "pool", "-n", namespace]);
    assert.equal(fleet.spec.replicas, 3);
    const scale = await getJson<{ kind: string; spec: { replicas: number } }>([
      "get",
      "sbf",
      "pool",
      "-n",
      namespace,
      "--subresource=scale",
    ]);
    assert.equal(scale.kind, "Scale");
    assert.equal(scale.spec.replicas, 3);
    const tooMany = await kubectl(["scale", "sbf/pool", "-n", namespace, "--replicas=11"]);
    assert.notEqual(tooMany.code, 0, "scaling past maxReplicas is refused");
    assert.match(tooMany.stderr, /spec\.replicas must lie between spec\.minReplicas and spec\.maxReplicas/);
  });

  it("keep Workspace.fleetRef and ownerId immutable", async (t) => {
    const namespace = await testNamespace(t);
    const create = await kubectl(
      ["create", "-f", "-"],
      manifest("Workspace", "w", { fleetRef: { name: "a" }, ownerId: "alice" }, namespace),
    );
    assert.equal(create.code, 0, create.stderr);
    const patch = async (p: unknown) =>
      kubectl(["patch", "ws", "w", "-n", namespace, "--type=merge", "-p", JSON.stringify(p)]);
    const fleet = await patch({ spec: { fleetRef: { name: "b" } } });
    assert.match(fleet.stderr, /spec\.fleetRef: Invalid value: spec\.fleetRef is immutable/);
    const owner = await patch({ spec: { ownerId: "bob" } });
    assert.match(owner.stderr, /spec\.ownerId: Invalid value: spec\.ownerId is immutable/);
    const removed = await patch({ spec: { ownerId: null } });
    assert.match(removed.stderr, /spec\.ownerId is immutable/);
    const allowed = await patch({ spec: { suspended: true } });
    assert.equal(allowed.code, 0, allowed.stderr);
  });

  it(`reject ${invalidCases.length} invalid objects, naming the field`, async (t) => {
    assert.ok(invalidCases.length >= 40);
    const namespace = await testNamespace(t);
    const check = async (c: InvalidCase) => {
      const body = manifest(c.kind, c.objectName ?? "bad", c.spec, namespace);
      const res = await kubectl(["create", "--dry-run=server", "-f", "-"], body);
      if (res.code === 0) return `${c.kind} "${c.name}": accepted`;
      if (!c.expect.test(res.stderr))
        return `${c.kind} "${c.name}": message ${JSON.stringify(res.stderr.trim())} !~ ${c.expect}`;
      return undefined;
    };
    const failures: string[] = [];
    for (let i = 0; i < invalidCases.length; i += 8) {
      const batch = await Promise.all(invalidCases.slice(i, i + 8).map(check));
      failures.push(...batch.filter((f): f is string => f !== undefined));
    }
    assert.deepEqual(failures, []);
  });
});
