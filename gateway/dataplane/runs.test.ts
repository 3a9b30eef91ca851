import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { missingLog } from "./runs.ts";

type Pod = Parameters<typeof missingLog>[0];

function pod(o: { containers?: string[]; restarted?: string[]; defaultContainer?: string } = {}): Pod {
  const containers = o.containers ?? ["dispatch"];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "run-1-abcde",
      namespace: "team",
      ...(o.defaultContainer
        ? { annotations: { "kubectl.kubernetes.io/default-container": o.defaultContainer } }
        : {}),
    },
    spec: { containers: containers.map((name) => ({ name })), initContainers: [{ name: "clone" }] },
    status: {
      containerStatuses: containers.map((name) => ({
        name,
        ...(o.restarted?.includes(name) ? { lastState: { terminated: { exitCode: 1 } } } : { lastState: {} }),
      })),
    },
  };
}

describe("missingLog", () => {
  it("reads the current log of any container the pod has, init containers included", () => {
    assert.equal(missingLog(pod(), undefined, false), undefined);
    assert.equal(missingLog(pod(), "dispatch", false), undefined);
    assert.equal(missingLog(pod(), "clone", false), undefined);
  });

  it("names a container the pod does not have", () => {
    assert.match(missingLog(pod(), "sidecar", false)!, /has no container sidecar/);
    assert.match(missingLog(pod(), "sidecar", true)!, /has no container sidecar/);
  });

  it("has no previous log for a container that never restarted", () => {
    assert.match(missingLog(pod(), undefined, true)!, /dispatch .* has not restarted/);
    assert.match(missingLog(pod(), "dispatch", true)!, /has not restarted/);
    assert.equal(missingLog(pod({ restarted: ["dispatch"] }), undefined, true), undefined);
  });

  it("takes the default container of a pod with several, and leaves an unnamed choice to the apiserver", () => {
    const two = { containers: ["a", "b"], restarted: ["b"] };
    assert.equal(missingLog(pod({ ...two, defaultContainer: "b" }), undefined, true), undefined);
    assert.match(missingLog(pod({ ...two, defaultContainer: "a" }), undefined, true)!, /container a /);
    assert.equal(missingLog(pod(two), undefined, true), undefined);
  });
});
