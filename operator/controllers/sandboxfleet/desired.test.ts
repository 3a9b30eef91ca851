import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SandboxFleet } from "../../../api/v1alpha1/index.ts";
import { specSchemas } from "../../../api/v1alpha1/index.ts";
import type { V1Deployment } from "@kubernetes/client-node";
import { desiredDeployment } from "./desired.ts";
import { formatBytes, quantityBytes, sandboxResources } from "./resources.ts";

function fleet(template: Record<string, unknown> = {}): SandboxFleet {
  return {
    apiVersion: "agentry.dev/v1alpha1",
    kind: "SandboxFleet",
    metadata: { name: "pool", namespace: "team", uid: "uid-1", generation: 1 },
    spec: specSchemas.SandboxFleet.parse({ template: { image: "registry.example/sandbox:1", ...template } }),
  };
}

const podSpec = (f: SandboxFleet) =>
  (desiredDeployment(f, 1, "controller") as unknown as V1Deployment).spec!.template.spec!;

describe("sandbox pod storage", () => {
  it("limits the workspace and /tmp volumes and the container's ephemeral storage by default", () => {
    const pod = podSpec(fleet());
    assert.deepEqual(pod.volumes, [
      { name: "workspaces", emptyDir: { sizeLimit: "10Gi" } },
      { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
      { name: "agentry-trust", configMap: { name: "agentry-trust" } },
    ]);
    assert.deepEqual(pod.containers[0]!.resources, {
      requests: { "ephemeral-storage": "1Gi" },
      limits: { "ephemeral-storage": "11520Mi" },
    });
  });

  it("takes the sizes from template.storage and keeps the template's other resources", () => {
    const pod = podSpec(
      fleet({
        storage: { workspaceSizeLimit: "2G", tmpSizeLimit: 1048576, ephemeralStorageRequest: "500Mi" },
        resources: { requests: { cpu: "250m" }, limits: { memory: "1Gi" } },
      }),
    );
    assert.deepEqual(pod.volumes?.[0]?.emptyDir, { sizeLimit: "2G" });
    assert.deepEqual(pod.volumes?.[1]?.emptyDir, { sizeLimit: "1048576" });
    assert.deepEqual(pod.containers[0]!.resources, {
      requests: { cpu: "250m", "ephemeral-storage": "500Mi" },
      limits: { memory: "1Gi", "ephemeral-storage": "2216293Ki" },
    });
  });

  it("leaves an ephemeral-storage the template sets alone, and keeps a request within the limit", () => {
    const set = sandboxResources(
      fleet({
        resources: { requests: { "ephemeral-storage": "3Gi" }, limits: { "ephemeral-storage": "5Gi" } },
      }).spec.template,
    );
    assert.deepEqual(set, {
      requests: { "ephemeral-storage": "3Gi" },
      limits: { "ephemeral-storage": "5Gi" },
    });
    const clamped = sandboxResources(
      fleet({ storage: { workspaceSizeLimit: "1Gi", tmpSizeLimit: "1Gi", ephemeralStorageRequest: "100Gi" } })
        .spec.template,
    );
    assert.deepEqual(clamped, {
      requests: { "ephemeral-storage": "2304Mi" },
      limits: { "ephemeral-storage": "2304Mi" },
    });
  });

  it("refuses sizes that are not positive byte quantities", () => {
    for (const size of ["0", "-1Gi", "0Gi", "10m", "lots", "1Ki ", 0])
      assert.equal(
        specSchemas.SandboxFleet.safeParse({
          template: { image: "x:1", storage: { workspaceSizeLimit: size } },
        }).success,
        false,
        String(size),
      );
    for (const size of ["10Gi", "500M", "1.5Gi", "1e9", 4096])
      assert.equal(
        specSchemas.SandboxFleet.safeParse({
          template: { image: "x:1", storage: { workspaceSizeLimit: size } },
        }).success,
        true,
        String(size),
      );
  });

  it("keeps the pod restricted", () => {
    const pod = podSpec(fleet());
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.deepEqual(pod.containers[0]!.securityContext?.capabilities, { drop: ["ALL"] });
    assert.equal(pod.containers[0]!.securityContext?.readOnlyRootFilesystem, true);
  });
});

describe("quantities", () => {
  const table: [string | number, bigint][] = [
    ["1", 1n],
    [4096, 4096n],
    ["1Ki", 1024n],
    ["10Gi", 10n * 1024n ** 3n],
    ["1.5Gi", 1610612736n],
    ["2G", 2_000_000_000n],
    ["1k", 1000n],
    ["1e3", 1000n],
    ["1500m", 2n],
    ["0.1", 1n],
  ];
  for (const [q, bytes] of table) it(`${q} is ${bytes} bytes`, () => assert.equal(quantityBytes(q), bytes));

  it("refuses what is not a quantity", () => {
    for (const q of ["", "Gi", "1 Gi", "ki", "1K", "x"])
      assert.throws(() => quantityBytes(q), /not a quantity/, q);
  });

  it("formats bytes with the largest exact binary suffix", () => {
    assert.equal(formatBytes(11n * 1024n ** 3n), "11Gi");
    assert.equal(formatBytes(1536n * 1024n * 1024n), "1536Mi");
    assert.equal(formatBytes(1000n), "1000");
    assert.equal(formatBytes(0n), "0");
  });
});
