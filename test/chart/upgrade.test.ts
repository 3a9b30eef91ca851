// `helm upgrade` from the previous chart version (taken from git history) to this one, with
// agentry objects present, then `helm uninstall` and a reinstall, as the README's "Upgrade
// and uninstall" says. CRDs are cluster-wide and the shared test cluster's belong to
// kubectl (test/run.ts), so this test runs on a control plane of its own.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { specSchemas } from "../../api/v1alpha1/index.ts";
import { run, waitFor } from "../harness/cluster.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { repoRoot } from "../harness/paths.ts";
import { chart, helm, RESTRICTED } from "./helm.ts";

const NAMESPACE = "agentry-system";
const RELEASE = "agentry";
const CRDS = ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"].map((p) => `${p}.agentry.dev`);
const EXAMPLES = ["agentruntime", "pipeline-nightly", "pipeline-once", "sandboxfleet", "workspace"];

const git = (...args: string[]) => execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
const chartVersion = (text: string) => (yaml.load(text) as { version: string }).version;

/**
 * The chart as it was just before its version became the current one: the newest commit
 * whose Chart.yaml names another version (HEAD itself when the version was bumped but not
 * committed). Needs the git history (not a shallow clone).
 */
async function previousChart(): Promise<{ commit: string; version: string; dir: string }> {
  const current = chartVersion(await readFile(join(chart, "Chart.yaml"), "utf8"));
  const versionAt = (rev: string) => {
    try {
      return chartVersion(git("show", `${rev}:charts/agentry/Chart.yaml`));
    } catch {
      return undefined; // no chart at that commit
    }
  };
  let commit: string | undefined;
  if (versionAt("HEAD") !== current) commit = git("rev-parse", "HEAD");
  else
    for (const c of git("log", "--format=%H", "--", "charts/agentry/Chart.yaml").split("\n")) {
      const before = versionAt(`${c}^`);
      if (before !== undefined && before !== current) {
        commit = git("rev-parse", `${c}^`);
        break;
      }
    }
  if (!commit)
    throw new Error(
      `no chart version before ${current} in git history (a shallow clone? run git fetch --unshallow)`,
    );
  const dir = await mkdtemp(join(tmpdir(), "agentry-prev-chart-"));
  execFileSync("sh", ["-c", `git archive --format=tar ${commit} charts/agentry | tar -x -C "${dir}"`], {
    cwd: repoRoot,
  });
  return { commit, version: versionAt(commit)!, dir: join(dir, "charts", "agentry") };
}

/** This chart with one CRD changed (a new short name) and the version raised: the next release. */
async function nextChart(): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), "agentry-next-chart-")), "agentry");
  await cp(chart, dir, { recursive: true });
  const chartYaml = join(dir, "Chart.yaml");
  const meta = await readFile(chartYaml, "utf8");
  await writeFile(chartYaml, meta.replace(/^version: (.*)$/m, "version: $1-next"));
  const crd = join(dir, "templates", "crds", "agentry.dev_agentruntimes.yaml");
  const text = await readFile(crd, "utf8");
  const changed = text.replace(
    "    shortNames:\n      - ar\n",
    "    shortNames:\n      - ar\n      - arnext\n",
  );
  assert.notEqual(changed, text, "the CRD template changed");
  await writeFile(crd, changed);
  return dir;
}

/** A CRD as the apiserver's JSON has it (client-node's classes rename x-kubernetes-* keys). */
type Crd = {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { names: { shortNames?: string[] }; versions: { schema: unknown }[] };
};

describe("Helm upgrade from the previous chart version", () => {
  it("keeps every object, takes over and upgrades the CRDs; uninstall keeps objects and CRDs", async (t) => {
    const previous = await previousChart();
    t.after(() => rm(join(previous.dir, "..", ".."), { recursive: true, force: true }));
    const next = await nextChart();
    t.after(() => rm(join(next, ".."), { recursive: true, force: true }));
    t.diagnostic(`previous chart ${previous.version} at ${previous.commit.slice(0, 12)}`);

    const controlPlane = await ControlPlane.start({ nodes: 3 });
    t.after(() => controlPlane.stop());
    const env = { KUBECONFIG: controlPlane.kubeconfig };
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const kubectl = (args: string[]) => run("kubectl", args, undefined, env);
    const readCrd = async (name: string) => {
      const res = await kubectl(["get", "crd", name, "-o", "json"]);
      assert.equal(res.code, 0, res.stderr);
      return JSON.parse(res.stdout) as Crd;
    };
    const readCrds = () => Promise.all(CRDS.map(readCrd));

    await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: RESTRICTED } } });
    await core.createNamespace({ body: { metadata: { name: "team-a" } } });
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: "pg" }, stringData: { url: "postgres://agentry@db.example:5432/agentry" } },
    });
    // Values both versions know. kwok runs no webhook process: admit no namespace. The
    // database Secret turns the migration hook Job on.
    const values = [
      "--set-json",
      'webhook.namespaceSelector={"matchLabels":{"agentry.dev/chart-test":"none"}}',
      "--set",
      "gateway.database.urlSecret=pg",
    ];
    const helmIn = (args: string[]) => helm([...args, "-n", NAMESPACE], env);

    // 1. The previous version, with objects of all four kinds.
    const install = await helmIn([
      "install",
      RELEASE,
      previous.dir,
      ...values,
      "--wait",
      "--timeout",
      "120s",
    ]);
    assert.equal(install.code, 0, install.stderr);
    const before = await readCrds();
    const helmOwned = (crd: Crd) => crd.metadata.annotations?.["meta.helm.sh/release-name"] === RELEASE;
    for (const file of EXAMPLES) {
      const res = await kubectl(["apply", "-n", "team-a", "-f", join(repoRoot, "examples", `${file}.yaml`)]);
      assert.equal(res.code, 0, res.stderr);
    }
    type Obj = { kind: string; metadata: { name: string; uid: string; generation: number }; spec: unknown };
    const objects = async () => {
      const res = await kubectl(["get", "agentry", "-n", "team-a", "-o", "json"]);
      assert.equal(res.code, 0, res.stderr);
      return (JSON.parse(res.stdout) as { items: Obj[] }).items
        .map(({ kind, metadata: { name, uid, generation }, spec }) => ({ kind, name, uid, generation, spec }))
        .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
    };
    const created = await objects();
    assert.equal(created.length, EXAMPLES.length, "one object per example");
    // What the upgrade may change in them: a field this chart's CRDs add with a default (e.g.
    // spec.networkPolicy) shows on read. Nothing else.
    const upgraded = created.map((o) => ({
      ...o,
      spec: specSchemas[o.kind as keyof typeof specSchemas].parse(o.spec),
    }));

    // 2. The CRDs of a chart whose CRDs sat in crds/ are not the release's: Helm refuses to
    // take them over unless told to (README: --take-ownership).
    const upgradeArgs = ["upgrade", RELEASE, chart, ...values, "--wait", "--timeout", "120s"];
    if (!before.some(helmOwned)) {
      const refused = await helmIn(upgradeArgs);
      assert.notEqual(refused.code, 0, "upgrade without --take-ownership");
      assert.match(
        refused.stderr,
        /CustomResourceDefinition "\w+\.agentry\.dev" .*invalid ownership metadata/,
      );
    }

    // 3. The upgrade, watching the migration hook: its NetworkPolicy must exist before its
    // Job, since the default deny (installed by the previous version) is in force.
    const events: string[] = [];
    const watch = new k8s.Watch(kc);
    const watches = await Promise.all(
      [
        `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies`,
        `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`,
        `/api/v1/namespaces/${NAMESPACE}/pods`,
      ].map((path) =>
        watch.watch(
          path,
          {},
          (type: string, o: k8s.KubernetesObject & { status?: { phase?: string } }) =>
            events.push(`${type} ${o.kind} ${o.metadata?.name} ${o.status?.phase ?? ""}`.trim()),
          () => undefined,
        ),
      ),
    );
    t.after(() => watches.forEach((w) => w.abort()));
    const upgrade = await helmIn([...upgradeArgs, "--take-ownership"]);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    const at = (re: RegExp) => events.findIndex((e) => re.test(e));
    const policyAdded = at(/^ADDED NetworkPolicy agentry-gateway-migrate$/);
    const jobAdded = at(/^ADDED Job agentry-gateway-migrate-\d+$/);
    const podDone = at(/^MODIFIED Pod agentry-gateway-migrate-.* Succeeded$/);
    assert.ok(policyAdded >= 0 && jobAdded >= 0 && podDone >= 0, events.join("\n"));
    assert.ok(policyAdded < jobAdded, `the policy before the Job:\n${events.join("\n")}`);
    const policyDeleted = at(/^DELETED NetworkPolicy agentry-gateway-migrate$/);
    assert.ok(policyDeleted > podDone, "removed once the hook succeeded");

    // The CRDs are now the release's, kept on uninstall, with this chart's content.
    const plain = new Map(
      await Promise.all(
        CRDS.map(async (name) => {
          const file = join(repoRoot, "crds", `agentry.dev_${name.split(".")[0]}.yaml`);
          return [name, yaml.load(await readFile(file, "utf8")) as Crd] as const;
        }),
      ),
    );
    for (const crd of await readCrds()) {
      const name = crd.metadata.name;
      assert.ok(helmOwned(crd), `${name} is the release's`);
      assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep", name);
      assert.equal(crd.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm", name);
      assert.deepEqual(
        crd.spec.versions.map((v) => v.schema),
        plain.get(name)!.spec.versions.map((v) => v.schema),
        `${name}: the schema of crds/`,
      );
    }
    assert.deepEqual(await objects(), upgraded, "every object unchanged");
    const operator = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: "agentry-operator" });
    assert.ok(
      operator.spec?.template.spec?.containers[0]?.args?.some((a) => a.startsWith("--dispatcher-image=")),
      "the operator runs with this chart's arguments",
    );

    // 4. The next upgrade carries a changed CRD to the cluster.
    const again = await helmIn(["upgrade", RELEASE, next, ...values, "--wait", "--timeout", "120s"]);
    assert.equal(again.code, 0, again.stderr);
    const ar = await readCrd("agentruntimes.agentry.dev");
    assert.deepEqual(ar.spec.names.shortNames, ["ar", "arnext"], "helm upgrade upgraded the CRD");
    assert.deepEqual(await objects(), upgraded, "every object unchanged");

    // 5. Uninstall: the release's objects go; the CRDs and every agentry object stay.
    const uninstall = await helmIn(["uninstall", RELEASE, "--wait"]);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.match(uninstall.stdout, /kept due to the resource policy/);
    for (const name of CRDS) assert.match(uninstall.stdout, new RegExp(name.replaceAll(".", "\\.")));
    await waitFor(
      "the release's Deployments gone",
      async () => (await apps.listNamespacedDeployment({ namespace: NAMESPACE })).items.length === 0,
    );
    assert.equal((await readCrds()).length, CRDS.length, "CRDs kept");
    assert.deepEqual(await objects(), upgraded, "every object kept");

    // 6. A reinstall under the same name takes the kept CRDs back without --take-ownership.
    const reinstall = await helmIn(["install", RELEASE, chart, ...values, "--wait", "--timeout", "120s"]);
    assert.equal(reinstall.code, 0, reinstall.stderr);
    const back = await readCrd("agentruntimes.agentry.dev");
    assert.deepEqual(back.spec.names.shortNames, ["ar"], "the reinstalled chart's CRD");
    assert.deepEqual(await objects(), upgraded, "every object still there");

    // 7. The README's way for a Helm without --take-ownership: back to the previous version
    // (its CRDs as an install of it left them: not the release's), the README's loop that
    // marks them, then a plain upgrade.
    assert.equal((await helmIn(["uninstall", RELEASE, "--wait"])).code, 0);
    const unmark = await kubectl([
      "annotate",
      "crd",
      ...CRDS,
      "meta.helm.sh/release-name-",
      "meta.helm.sh/release-namespace-",
    ]);
    assert.equal(unmark.code, 0, unmark.stderr);
    const old = await helmIn(["install", RELEASE, previous.dir, ...values, "--wait", "--timeout", "120s"]);
    assert.equal(old.code, 0, old.stderr);
    if (!(await readCrds()).some(helmOwned)) {
      const readme = await readFile(join(repoRoot, "README.md"), "utf8");
      const loop = /```sh\n((?:(?!```)[\s\S])*for crd in agentruntimes[\s\S]*?)```/.exec(readme)?.[1];
      assert.ok(loop, "the README's loop");
      const marked = await run(
        "bash",
        ["-euo", "pipefail", "-c", loop.replace(/^ {2}/gm, "")],
        undefined,
        env,
      );
      assert.equal(marked.code, 0, marked.stderr);
    }
    const plainUpgrade = await helmIn(upgradeArgs);
    assert.equal(plainUpgrade.code, 0, plainUpgrade.stderr);
    assert.ok((await readCrds()).every(helmOwned), "the CRDs are the release's");
    assert.deepEqual(await objects(), upgraded, "every object unchanged");

    // 8. crds.install=false on an upgrade leaves the CRDs (and objects) in place too.
    const handOver = await helmIn([...upgradeArgs, "--set", "crds.install=false"]);
    assert.equal(handOver.code, 0, handOver.stderr);
    assert.equal((await readCrds()).length, CRDS.length, "CRDs kept");
    assert.deepEqual(await objects(), upgraded, "every object kept");
  });
});
