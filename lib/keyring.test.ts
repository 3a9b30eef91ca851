import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  advance,
  newKeyRing,
  publicKeyFiles,
  publicKeysOf,
  trustedKeys,
  untilNextChange,
} from "./keyring.ts";

const HOUR = 3_600_000;
const policy = { rotateEveryMs: 24 * HOUR, graceMs: HOUR };
const at = (h: number) => new Date(Date.parse("2026-12-01T00:00:00Z") + h * HOUR);
const kids = (keys: { kid: string }[]) => keys.map((k) => k.kid);

describe("signing key ring", () => {
  it("starts with a signing key and a published next key", () => {
    const ring = newKeyRing(at(0));
    assert.notEqual(ring.current.kid, ring.next.kid);
    assert.equal(ring.previous, undefined);
    assert.deepEqual(kids(trustedKeys(ring, at(0), policy)), [ring.current.kid, ring.next.kid]);
    assert.equal(advance(ring, at(23.9), policy), undefined, "nothing to do before the period ends");
    assert.equal(untilNextChange(ring, at(23), policy), HOUR);
  });

  it("rotates: next signs, current stays trusted for the grace period, a new next is published", () => {
    const ring = newKeyRing(at(0));
    const rotated = advance(ring, at(24), policy)!;
    assert.equal(rotated.current.kid, ring.next.kid, "the key every pod already trusts signs");
    assert.equal(rotated.previous?.kid, ring.current.kid);
    assert.ok(![ring.current.kid, ring.next.kid].includes(rotated.next.kid));
    assert.deepEqual(kids(trustedKeys(rotated, at(24.5), policy)).sort(), [
      ...[ring.current.kid, ring.next.kid, rotated.next.kid].sort(),
    ]);
    // After the grace period the old key is no longer trusted, then dropped.
    assert.ok(!kids(trustedKeys(rotated, at(25), policy)).includes(ring.current.kid));
    assert.equal(untilNextChange(rotated, at(24.5), policy), HOUR / 2);
    const retired = advance(rotated, at(25), policy)!;
    assert.equal(retired.previous, undefined);
    assert.equal(retired.current.kid, rotated.current.kid);
    assert.equal(advance(retired, at(26), policy), undefined);
  });

  it("after a long pause rotates once, and the old key gets its full grace from then", () => {
    const ring = newKeyRing(at(0));
    const late = advance(ring, at(24 * 30), policy)!;
    assert.equal(late.current.kid, ring.next.kid);
    assert.ok(kids(trustedKeys(late, at(24 * 30 + 0.5), policy)).includes(ring.current.kid));
  });

  it("publishes public keys only, as <kid>.pem, and reads back only such files", () => {
    const ring = newKeyRing(at(0));
    const files = publicKeyFiles(trustedKeys(ring, at(0), policy));
    assert.deepEqual(Object.keys(files).sort(), [`${ring.current.kid}.pem`, `${ring.next.kid}.pem`].sort());
    for (const pem of Object.values(files)) {
      assert.match(pem, /BEGIN PUBLIC KEY/);
      assert.doesNotMatch(pem, /PRIVATE/);
    }
    const read = publicKeysOf({ ...files, "evil.pem": files[`${ring.current.kid}.pem`]!, other: "x" });
    assert.deepEqual(kids(read).sort(), [ring.current.kid, ring.next.kid].sort());
  });
});
