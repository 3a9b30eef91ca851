import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeContinue, encodeContinue, revision } from "./continue.ts";

describe("continue tokens in the apiserver's format", () => {
  it("encodes as k8s.io/apiserver does: base64url without padding of v, rv, start (the key plus NUL)", () => {
    const token = encodeContinue(1234, "team/agent-1");
    assert.doesNotMatch(token, /=/);
    assert.equal(
      Buffer.from(token, "base64url").toString("utf8"),
      '{"v":"meta.k8s.io/v1","rv":1234,"start":"/team/agent-1\\u0000"}',
    );
    assert.deepEqual(decodeContinue(token), { rv: 1234, start: "team/agent-1\u0000" });
  });

  it("reads a token the apiserver gave, and gives the same bytes", () => {
    // Kubernetes 1.36's answer to a list of a namespace with limit=1 (Go's encoding/json and
    // base64.RawURLEncoding): the key starts with a slash.
    const fromApiserver = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6Mjc3LCJzdGFydCI6Ii9hMFx1MDAwMCJ9";
    assert.deepEqual(decodeContinue(fromApiserver), { rv: 277, start: "a0\u0000" });
    assert.equal(encodeContinue(277, "a0"), fromApiserver);
  });

  const foreign: [string, string][] = [
    ["not base64 JSON", "bm90IGpzb24"],
    ["another version", Buffer.from('{"v":"x","rv":1,"start":"a"}').toString("base64url")],
    ["no start", Buffer.from('{"v":"meta.k8s.io/v1","rv":1,"start":""}').toString("base64url")],
    [
      "a key without its slash",
      Buffer.from('{"v":"meta.k8s.io/v1","rv":1,"start":"a"}').toString("base64url"),
    ],
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
