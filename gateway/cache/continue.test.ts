import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeContinue, encodeContinue, revision } from "./continue.ts";

describe("continue tokens in the apiserver's format", () => {
  it("encodes as k8s.io/apiserver does: base64url without padding of v, rv, start (the key plus NUL)", () => {
    const token = encodeContinue(1234, "team/agent-1");
    assert.doesNotMatch(token, /=/);
    assert.equal(
      Buffer.from(token, "base64url").toString("utf8"),
      '{"v":"meta.k8s.io/v1","rv":1234,"start":"team/agent-1\\u0000"}',
    );
    assert.deepEqual(decodeContinue(token), { rv: 1234, start: "team/agent-1\u0000" });
  });

  it("reads a token the apiserver gave", () => {
    // Go's encoding/json and base64.RawURLEncoding, as an apiserver answered a page of 1.
    const fromApiserver = Buffer.from('{"v":"meta.k8s.io/v1","rv":98,"start":"a1\\u0000"}').toString(
      "base64url",
    );
    assert.deepEqual(decodeContinue(fromApiserver), { rv: 98, start: "a1\u0000" });
  });

  const foreign: [string, string][] = [
    ["not base64 JSON", "bm90IGpzb24"],
    ["another version", Buffer.from('{"v":"x","rv":1,"start":"a"}').toString("base64url")],
    ["no start", Buffer.from('{"v":"meta.k8s.io/v1","rv":1,"start":""}').toString("base64url")],
    ["rv a string", Buffer.from('{"v":"meta.k8s.io/v1","rv":"1","start":"a"}').toString("base64url")],
    ["the gateway's fan-out token", Buffer.from('agentry-ns:{"ns":"a"}').toString("base64url")],
  ];
  for (const [what, token] of foreign)
    it(`leaves ${what} to the apiserver`, () => assert.equal(decodeContinue(token), undefined));

  it("compares resourceVersions only when they are plain decimals", () => {
    assert.equal(revision("42"), 42);
    for (const rv of [undefined, "", "0", "042", "4a", "12345678901234567890"])
      assert.equal(revision(rv), undefined, String(rv));
  });
});
