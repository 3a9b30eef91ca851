// How a Pod's container becomes `podman run` arguments (no podman needed).
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { cpuCores, podRunOptions, runArgs, toPodmanMemory } from "./containers.ts";

const dir = await mkdtemp(join(tmpdir(), "agentry-containers-test-"));
after(() => rm(dir, { recursive: true, force: true }));

function pod(container: Partial<k8s.V1Container>, spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod {
  return {
    metadata: { name: "p", namespace: "team-a" },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 },
      ...spec,
      containers: [
        {
          name: "main",
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
          ...container,
        },
      ],
    },
  };
}

describe("podRunOptions", () => {
  it("maps the restricted securityContext, args, env and limits", async () => {
    const o = await podRunOptions(
      pod({
        command: ["node", "dist/webhook/main.js"],
        args: ["--listen=0.0.0.0:9443", "--log-level=info"],
        env: [
          { name: "PLAIN", value: "v" },
          { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
          { name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: "db", key: "url" } } },
        ],
        resources: { limits: { cpu: "500m", memory: "256Mi" } },
      }),
      {
        image: "img",
        volumesDir: dir,
        resolvedEnv: { DATABASE_URL: "postgres://x" },
        flags: { "--listen": "127.0.0.1:1234", "--extra": "yes" },
      },
    );
    assert.deepEqual(o.entrypoint, ["node", "dist/webhook/main.js"]);
    assert.deepEqual(o.args, ["--listen=127.0.0.1:1234", "--log-level=info", "--extra=yes"]);
    assert.deepEqual(o.env, { PLAIN: "v", POD_NAMESPACE: "team-a", DATABASE_URL: "postgres://x" });
    assert.deepEqual(
      [o.user, o.groups, o.readOnly, o.noNewPrivileges, o.capDrop],
      ["65532:65532", ["65532"], true, true, ["ALL"]],
    );
    assert.deepEqual([o.memory, o.cpus], [String(256 * 1024 ** 2), "0.5"]);
    const args = runArgs(o, "c1");
    for (const flag of ["--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "--passwd=false"])
      assert.ok(args.includes(flag), flag);
    assert.deepEqual(args.slice(args.indexOf("--security-opt"), args.indexOf("--security-opt") + 2), [
      "--security-opt",
      "no-new-privileges",
    ]);
    assert.deepEqual(args.slice(-4), ["img", "--listen=127.0.0.1:1234", "--log-level=info", "--extra=yes"]);
  });

  it("gives each emptyDir a host directory anyone may write, and mounts the ServiceAccount token", async () => {
    const o = await podRunOptions(
      pod(
        { volumeMounts: [{ name: "tmp", mountPath: "/tmp" }] },
        { volumes: [{ name: "tmp", emptyDir: {} }], automountServiceAccountToken: true },
      ),
      { image: "img", volumesDir: dir, serviceAccount: { dir: "/sa", host: "127.0.0.1", port: 6443 } },
    );
    assert.deepEqual(o.mounts, [
      { source: join(dir, "tmp"), target: "/tmp", readOnly: false },
      { source: "/sa", target: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
    ]);
    assert.equal((await stat(join(dir, "tmp"))).mode & 0o777, 0o777);
    assert.deepEqual([o.env?.KUBERNETES_SERVICE_HOST, o.env?.KUBERNETES_SERVICE_PORT], ["127.0.0.1", "6443"]);
  });

  it("refuses what a kubelet would refuse or this harness cannot give", async () => {
    const cases: [string, k8s.V1Pod, RegExp][] = [
      [
        "root under runAsNonRoot",
        pod({}, { securityContext: { runAsNonRoot: true, runAsUser: 0 } }),
        /runAsNonRoot/,
      ],
      [
        "an unresolved Secret",
        pod({ env: [{ name: "K", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] }),
        /env K comes from/,
      ],
      [
        "a volume without a source",
        pod(
          { volumeMounts: [{ name: "cfg", mountPath: "/cfg" }] },
          { volumes: [{ name: "cfg", configMap: { name: "c" } }] },
        ),
        /volume cfg/,
      ],
    ];
    for (const [what, p, error] of cases)
      await assert.rejects(podRunOptions(p, { image: "img", volumesDir: dir }), error, what);
  });
});

describe("quantities", () => {
  for (const [q, bytes] of [
    ["512Mi", 512 * 1024 ** 2],
    ["1Gi", 1024 ** 3],
    ["1536Mi", 1536 * 1024 ** 2],
    ["100M", 100e6],
    ["1000", 1000],
  ] as const)
    it(`memory ${q} is ${bytes} bytes`, () => assert.equal(toPodmanMemory(q), String(bytes)));
  for (const [q, cores] of [
    ["1", 1],
    ["500m", 0.5],
    ["2", 2],
  ] as const)
    it(`cpu ${q} is ${cores} cores`, () => assert.equal(cpuCores(q), cores));
});
