import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestOf, reviewMutate, reviewValidate, type AdmissionRequest } from "./admission.ts";
import { fakeLookup, fleet, workspace } from "../lib/admission/fixtures.ts";
import { DEFAULT_POLICY } from "../lib/admission/index.ts";

const req = (over: Partial<AdmissionRequest>): AdmissionRequest => ({
  uid: "u1",
  kind: { group: "agentry.dev", version: "v1alpha1", kind: "Workspace" },
  operation: "CREATE",
  ...over,
});

describe("AdmissionReview handling", () => {
  it("rejects a body that is not an AdmissionReview", () => {
    assert.throws(() => requestOf({ kind: "Pod" }), /expected an admission\.k8s\.io\/v1 AdmissionReview/);
    assert.throws(
      () => requestOf({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
      /has no request/,
    );
  });

  it("denies with the rule's code, reason and message, and echoes the uid", async () => {
    const { review, outcome } = await reviewValidate(
      req({ object: workspace("w") }),
      fakeLookup(),
      DEFAULT_POLICY,
    );
    assert.equal(outcome, "denied");
    assert.equal(review.response?.uid, "u1");
    assert.equal(review.response?.allowed, false);
    assert.equal(review.response?.status?.code, 422);
    assert.equal(review.response?.status?.reason, "Invalid");
    assert.match(
      review.response?.status?.message ?? "",
      /spec\.fleetRef\.name: SandboxFleet "fleet" does not exist/,
    );
  });

  it("fills the namespace from the request and passes DELETE's old object", async () => {
    const old = { ...fleet("fleet"), metadata: { name: "fleet" } };
    const lookup = fakeLookup({ workspaces: [workspace("a")] });
    const kind = { group: "agentry.dev", version: "v1alpha1", kind: "SandboxFleet" };
    const { review } = await reviewValidate(
      req({ kind, operation: "DELETE", namespace: "team-a", oldObject: old }),
      lookup,
      DEFAULT_POLICY,
    );
    assert.equal(review.response?.status?.code, 409);
  });

  it("allows requests of other groups untouched", async () => {
    const other = req({ kind: { group: "", version: "v1", kind: "Pod" } });
    assert.deepEqual((await reviewValidate(other, fakeLookup(), DEFAULT_POLICY)).review.response, {
      uid: "u1",
      allowed: true,
    });
    assert.deepEqual(reviewMutate(other).review.response, { uid: "u1", allowed: true });
  });

  it("answers /mutate with a base64 JSONPatch", () => {
    const { review } = reviewMutate(req({ object: { ...workspace("w"), metadata: { name: "w" } } }));
    assert.equal(review.response?.patchType, "JSONPatch");
    const ops = JSON.parse(Buffer.from(review.response?.patch ?? "", "base64").toString()) as {
      path: string;
    }[];
    assert.ok(ops.some((o) => o.path === "/metadata/labels/agentry.dev~1fleet"));
  });
});
