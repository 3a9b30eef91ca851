import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { childName, shortHash, stableStringify } from "./names.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const label = fc.stringMatching(/^[a-z][-a-z0-9]{0,62}$/).filter((s) => !s.endsWith("-"));

describe("names", () => {
  it("keeps short names as they are", () => {
    assert.equal(childName("agent"), "agent");
    assert.equal(childName("agent", "data"), "agent-data");
  });

  it("always yields a DNS label of at most 63 characters", () => {
    fc.assert(
      fc.property(label, fc.constantFrom("", "data", "manifest", "run-abc123"), (base, suffix) => {
        const name = childName(base, suffix);
        assert.ok(name.length <= 63, name);
        assert.match(name, DNS_LABEL);
      }),
    );
  });

  it("is deterministic and keeps distinct long names distinct", () => {
    fc.assert(
      fc.property(label, label, (a, b) => {
        const long = (s: string) => `${s}-${"x".repeat(63)}`;
        assert.equal(childName(long(a), "data"), childName(long(a), "data"));
        if (a !== b) assert.notEqual(childName(long(a), "data"), childName(long(b), "data"));
      }),
    );
  });

  it("hashes equal values equally whatever the key order", () => {
    assert.equal(shortHash({ a: 1, b: [1, { c: 2, d: 3 }] }), shortHash({ b: [1, { d: 3, c: 2 }], a: 1 }));
    assert.notEqual(shortHash({ a: 1 }), shortHash({ a: 2 }));
    assert.equal(stableStringify({ b: 1, a: undefined, c: null }), '{"b":1,"c":null}');
    assert.match(shortHash("x"), /^[0-9a-z]{10}$/);
  });
});
