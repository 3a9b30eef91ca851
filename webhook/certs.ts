// Certificates for the self-managed mode: a private CA and a serving certificate signed by
// it (RSA 2048, node-forge), and the checks that say when to make new ones.
import { X509Certificate, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";
import { errorMessage } from "../lib/log.ts";

export interface CertBundle {
  /** PEM of the CA that signed `cert`. */
  caCert: string;
  /** PEM the webhook configurations carry as caBundle: this CA, plus the previous one during a rotation. */
  caBundle: string;
  cert: string;
  key: string;
}

export interface CertOptions {
  /** DNS names and IP addresses the serving certificate must cover. */
  hosts: string[];
  validityMs: number;
  now?: Date;
}

/**
 * A certificate serial from random bytes, as forge wants it (hex): positive and minimally
 * encoded in DER, which OpenSSL insists on. The first byte is 0x40–0x7f: no sign bit, and no
 * leading zero bytes (a serial of "0" and random hex was refused as "illegal padding" about
 * once in 512 certificates, when its first random byte was 0).
 */
export function serialHex(random: Uint8Array): string {
  const bytes = Buffer.from(random);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString("hex");
}

function newCert(publicKey: forge.pki.PublicKey, notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialHex(randomBytes(16));
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  return cert;
}

/** A new CA and a serving certificate for `hosts`; `previousCa` stays in caBundle so both are trusted. */
export function generateBundle(options: CertOptions, previousCa?: string): CertBundle {
  const now = options.now ?? new Date();
  // Accept a little clock skew between this process and the apiserver.
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + options.validityMs);
  const caKeys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const ca = newCert(caKeys.publicKey, notBefore, notAfter);
  const caName = [{ name: "commonName", value: `agentry-webhook-ca-${now.getTime()}` }];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const leaf = newCert(keys.publicKey, notBefore, notAfter);
  leaf.setSubject([{ name: "commonName", value: options.hosts[0] ?? "agentry-webhook" }]);
  leaf.setIssuer(caName);
  leaf.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: options.hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
  ]);
  leaf.sign(caKeys.privateKey, forge.md.sha256.create());

  const caCert = forge.pki.certificateToPem(ca);
  const keep = previousCa && stillValid(previousCa, now) ? previousCa : "";
  return {
    caCert,
    caBundle: caCert + keep,
    cert: forge.pki.certificateToPem(leaf),
    key: forge.pki.privateKeyToPem(keys.privateKey),
  };
}

function stillValid(pem: string, now: Date): boolean {
  try {
    return new Date(new X509Certificate(pem).validTo).getTime() > now.getTime();
  } catch {
    return false;
  }
}

/** When the certificate stops being valid. */
export const expiry = (pem: string): Date => new Date(new X509Certificate(pem).validTo);

/**
 * Why `bundle` must be replaced, or undefined when it is good: missing or unreadable, not
 * signed by its CA, not covering every host, or expiring within `rotateBeforeMs`.
 */
export function rotationReason(
  bundle: Partial<CertBundle> | undefined,
  hosts: string[],
  rotateBeforeMs: number,
  now = new Date(),
): string | undefined {
  if (!bundle?.cert || !bundle.key || !bundle.caCert || !bundle.caBundle) return "no certificate yet";
  try {
    const cert = new X509Certificate(bundle.cert);
    const ca = new X509Certificate(bundle.caCert);
    if (!cert.verify(ca.publicKey)) return "the certificate is not signed by its CA";
    const missingHost = hosts.find((h) => (isIP(h) ? !cert.checkIP(h) : !cert.checkHost(h)));
    if (missingHost) return `the certificate does not cover ${missingHost}`;
    const left = new Date(cert.validTo).getTime() - now.getTime();
    if (left < rotateBeforeMs) return `the certificate expires in ${Math.round(left / 1000)}s`;
    return undefined;
  } catch (err) {
    return `the stored certificate cannot be read (${errorMessage(err)})`;
  }
}
