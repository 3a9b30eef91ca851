// Data-plane tokens for tests: a signing key of the test's own, a trust directory holding its
// public key (what a runtime reads as AGENTRY_TRUST_DIR), and tokens signed with it. Stands
// in for the operator or the gateway where a test runs a runtime on its own.
import { createPrivateKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenScope, type TokenIssuer } from "../../contracts/tokens.ts";
import { generateSigningKey, TokenSigner, type SigningKeyPem } from "../../lib/tokens.ts";

/** Every scope: a token that opens whatever its audience allows. */
export const ALL_SCOPES = TokenScope.options;

export interface TestTrust {
  /** A directory with the public key (`<kid>.pem`), for AGENTRY_TRUST_DIR. */
  dir: string;
  key: SigningKeyPem;
  signer: TokenSigner;
  /** A token for `aud` allowing `scope` (default: all), `Bearer`-less. */
  token(
    aud: string,
    scope?: readonly TokenScope[],
    options?: { ttlSeconds?: number; sub?: string },
  ): Promise<string>;
  /** The `authorization` header of such a token. */
  bearer(aud: string, scope?: readonly TokenScope[]): Promise<Record<string, string>>;
  remove(): Promise<void>;
}

export async function testTrust(issuer: TokenIssuer = "agentry-operator", dir?: string): Promise<TestTrust> {
  const own = dir ?? (await mkdtemp(join(tmpdir(), "agentry-trust-")));
  const key = generateSigningKey();
  await writeFile(join(own, `${key.kid}.pem`), key.publicKeyPem);
  const signer = new TokenSigner(createPrivateKey(key.privateKeyPem), issuer);
  const token: TestTrust["token"] = (aud, scope = ALL_SCOPES, options = {}) =>
    signer.sign({ aud, scope: [...scope], ...options });
  return {
    dir: own,
    key,
    signer,
    token,
    bearer: async (aud, scope) => ({ authorization: `Bearer ${await token(aud, scope)}` }),
    remove: () => (dir ? Promise.resolve() : rm(own, { recursive: true, force: true })),
  };
}
