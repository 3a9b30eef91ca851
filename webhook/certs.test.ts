import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import forge from "node-forge";
import fc from "fast-check";
import { expiry, generateBundle, rotationReason, serialHex } from "./certs.ts";

const HOSTS = ["agentry-webhook.agentry.svc", "127.0.0.1"];
const HOUR = 3_600_000;

describe("certs", () => {
  const now = new Date("2026-06-01T00:00:00Z");
  const bundle = generateBundle({ hosts: HOSTS, validityMs: 24 * HOUR, now });

  it("makes a serving certificate signed by its CA that covers every host", () => {
    const cert = new X509Certificate(bundle.cert);
    assert.ok(cert.verify(new X509Certificate(bundle.caCert).publicKey));
    assert.equal(cert.checkHost("agentry-webhook.agentry.svc"), "agentry-webhook.agentry.svc");
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(expiry(bundle.cert).toISOString(), "2026-06-02T00:00:00.000Z");
    assert.equal(new X509Certificate(bundle.caCert).ca, true);
  });

  const cases: {
    name: string;
    at: Date;
    hosts?: string[];
    b?: Partial<typeof bundle>;
    want: RegExp | undefined;
  }[] = [
    { name: "fresh", at: now, want: undefined },
    { name: "near expiry", at: new Date(now.getTime() + 23 * HOUR), want: /expires in 3600s/ },
    { name: "missing", at: now, b: {}, want: /no certificate yet/ },
    { name: "a new host", at: now, hosts: [...HOSTS, "other.svc"], want: /does not cover other\.svc/ },
    { name: "garbage", at: now, b: { ...bundle, cert: "nope" }, want: /cannot be read/ },
    {
      name: "signed by another CA",
      at: now,
      b: { ...bundle, caCert: generateBundle({ hosts: HOSTS, validityMs: HOUR, now }).caCert },
      want: /not signed by its CA/,
    },
  ];
  for (const c of cases)
    it(`rotation: ${c.name}`, () => {
      const why = rotationReason(c.b ?? bundle, c.hosts ?? HOSTS, 2 * HOUR, c.at);
      if (c.want) assert.match(why ?? "", c.want);
      else assert.equal(why, undefined);
    });

  it("keeps the previous CA in the bundle while it is valid", () => {
    const next = generateBundle({ hosts: HOSTS, validityMs: HOUR, now }, bundle.caCert);
    assert.equal(next.caBundle, next.caCert + bundle.caCert);
    const later = generateBundle(
      { hosts: HOSTS, validityMs: HOUR, now: new Date(now.getTime() + 48 * HOUR) },
      bundle.caCert,
    );
    assert.equal(later.caBundle, later.caCert);
  });
  it("makes serials OpenSSL reads, whatever the random bytes (zeros and sign bits included)", () => {
    // Certificates with those serials, signed by one small key, read back by node's X509Certificate.
    const keys = forge.pki.rsa.generateKeyPair({ bits: 512 });
    const readable = (random: Uint8Array) => {
      const cert = forge.pki.createCertificate();
      cert.publicKey = keys.publicKey;
      cert.serialNumber = serialHex(random);
      cert.validity.notBefore = new Date();
      cert.validity.notAfter = new Date(Date.now() + 60_000);
      cert.setSubject([{ name: "commonName", value: "x" }]);
      cert.setIssuer([{ name: "commonName", value: "x" }]);
      cert.sign(keys.privateKey, forge.md.sha256.create());
      return new X509Certificate(forge.pki.certificateToPem(cert)).serialNumber.toLowerCase();
    };
    const edges = [
      new Uint8Array(16),
      Uint8Array.from([0, 6, ...new Array<number>(14).fill(17)]),
      new Uint8Array(16).fill(255),
    ];
    for (const r of edges) assert.equal(readable(r), serialHex(r));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (r) => {
        const hex = serialHex(r);
        assert.equal(hex.length, 32);
        assert.ok(parseInt(hex.slice(0, 2), 16) >= 0x40 && parseInt(hex.slice(0, 2), 16) <= 0x7f);
        assert.equal(hex.slice(2), Buffer.from(r).toString("hex").slice(2), "the rest stays random");
      }),
    );
    for (let i = 0; i < 20; i++) {
      const r = Uint8Array.from({ length: 16 }, () => Math.floor(Math.random() * 256));
      assert.equal(readable(r), serialHex(r));
    }
  });
});
