import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { expiry, generateBundle, rotationReason } from "./certs.ts";

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
});
