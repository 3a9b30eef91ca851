import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Audience } from "../contracts/tokens.ts";
import { generateSigningKey, keyId, TokenError, TokenSigner, TokenVerifier } from "./tokens.ts";

const T0 = Date.parse("2026-12-01T12:00:00Z");
const key = generateSigningKey();
const signer = new TokenSigner(createPrivateKey(key.privateKeyPem), "agentry-operator", () => T0);
const verifier = (now = T0) => new TokenVerifier({ keys: [createPublicKey(key.publicKeyPem)] }, () => now);
const ws = Audience.workspace("team.alice");

async function refused(p: Promise<unknown>, status: 401 | 403, message: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TokenError);
    assert.equal(err.status, status);
    assert.match(err.message, message);
    return true;
  });
}

describe("data-plane tokens", () => {
  it("a token opens its audience and scopes", async () => {
    const token = await signer.sign({ aud: ws, scope: ["files", "exec"], sub: "alice" });
    const claims = await verifier().verify(`Bearer ${token}`, { audiences: [ws], scope: "exec" });
    assert.equal(claims.iss, "agentry-operator");
    assert.equal(claims.sub, "alice");
    assert.equal(claims.exp - claims.iat, 300);
  });

  const cases: [
    string,
    () => Promise<string | undefined>,
    { audiences: string[]; scope: "exec" | "files" },
    401 | 403,
    RegExp,
  ][] = [
    [
      "no token",
      () => Promise.resolve(undefined),
      { audiences: [ws], scope: "exec" },
      401,
      /missing bearer token/,
    ],
    [
      "garbage",
      () => Promise.resolve("Bearer not.a.token"),
      { audiences: [ws], scope: "exec" },
      401,
      /malformed|unknown key|invalid/,
    ],
    [
      "another workspace",
      async () => `Bearer ${await signer.sign({ aud: Audience.workspace("team.bob"), scope: ["exec"] })}`,
      { audiences: [ws], scope: "exec" },
      403,
      /token is for workspace:team.bob/,
    ],
    [
      "a scope it lacks",
      async () => `Bearer ${await signer.sign({ aud: ws, scope: ["files"] })}`,
      { audiences: [ws], scope: "exec" },
      403,
      /does not allow exec/,
    ],
    [
      "an unknown key",
      async () => {
        const other = new TokenSigner(
          generateKeyPairSync("ed25519").privateKey,
          "agentry-operator",
          () => T0,
        );
        return `Bearer ${await other.sign({ aud: ws, scope: ["exec"] })}`;
      },
      { audiences: [ws], scope: "exec" },
      401,
      /unknown key/,
    ],
  ];
  for (const [name, token, req, status, message] of cases)
    it(`refuses ${name} with ${status}`, async () =>
      refused(verifier().verify(await token(), req), status, message));

  it("refuses an expired token, and caps lifetimes", async () => {
    const token = await signer.sign({ aud: ws, scope: ["exec"], ttlSeconds: 3600 });
    await verifier(T0 + 899_000).verify(`Bearer ${token}`, { audiences: [ws], scope: "exec" });
    await refused(
      verifier(T0 + 906_000).verify(`Bearer ${token}`, { audiences: [ws], scope: "exec" }),
      401,
      /expired/,
    );
  });

  it("refuses a token whose signature was tampered with", async () => {
    const token = await signer.sign({ aud: ws, scope: ["files"] });
    const [h, p, s] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: ["exec"] })).toString("base64url");
    await refused(
      verifier().verify(`Bearer ${h}.${forged}.${s}`, { audiences: [ws], scope: "exec" }),
      401,
      /invalid/,
    );
  });

  it("reads trusted keys from a directory and follows rotation", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-trust-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const v = new TokenVerifier({ dir }, () => T0);
    assert.equal(v.size, 0);
    await writeFile(join(dir, "operator.pem"), key.publicKeyPem);
    await writeFile(join(dir, "README"), "not a key");
    assert.equal(v.size, 1);
    const token = await signer.sign({ aud: ws, scope: ["exec"] });
    await v.verify(`Bearer ${token}`, { audiences: [ws], scope: "exec" });
    await unlink(join(dir, "operator.pem"));
    await refused(v.verify(`Bearer ${token}`, { audiences: [ws], scope: "exec" }), 401, /unknown key/);
    assert.equal(keyId(createPublicKey(key.publicKeyPem)), key.kid);
  });
});
