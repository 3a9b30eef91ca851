import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestOf, reviewMutate, reviewValidate, type AdmissionRequest } from "./admission.ts";
import { agent, fakeLookup, fleet, workspace } from "../lib/admission/fixtures.ts";
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
      req({ namespace: "team-a", object: workspace("w") }),
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

  it("denies a review whose objects are not in its namespace, generically and without a lookup", async () => {
    const kind = { group: "agentry.dev", version: "v1alpha1", kind: "AgentRuntime" };
    const elsewhere = { ...agent("a", { workspaceRef: { name: "secret-project" } }) };
    const cases: [string, Partial<AdmissionRequest>][] = [
      ["no namespace", { object: elsewhere }],
      ["the object in another namespace", { namespace: "team-b", object: elsewhere }],
      [
        "the old object in another namespace",
        {
          namespace: "team-b",
          operation: "UPDATE",
          object: { ...elsewhere, metadata: { name: "a" } },
          oldObject: elsewhere,
        },
      ],
    ];
    const messages = new Set<string>();
    for (const [what, over] of cases) {
      const lookup = fakeLookup({ workspaces: [workspace("secret-project")] });
      const { review, outcome } = await reviewValidate(req({ kind, ...over }), lookup, DEFAULT_POLICY);
      assert.equal(outcome, "denied", what);
      assert.equal(review.response?.status?.code, 400, what);
      assert.equal(lookup.calls, 0, `${what}: nothing looked up`);
      assert.doesNotMatch(review.response?.status?.message ?? "", /secret-project|team-a|team-b/, what);
      messages.add(
        review.response?.status?.message?.replace(
          /names no namespace|is not in the request's namespace/,
          "",
        ) ?? "",
      );
    }
    assert.equal(messages.size, 1, "one generic message");
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
