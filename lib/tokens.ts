// Signing and checking data-plane tokens (contracts/tokens.ts) with jose: Ed25519 keys,
// compact JWS, audience and scope checked by the runtime that receives the call.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, decodeProtectedHeader, jwtVerify, errors } from "jose";
import {
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_TTL_SECONDS,
  TokenClaims,
  type TokenIssuer,
  type TokenScope,
} from "../contracts/tokens.ts";

export interface SigningKeyPem {
  /** Key id: the first 16 hex digits of the public key's SHA-256, stable for a key. */
  kid: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

export function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, 16);
}

export function generateSigningKey(): SigningKeyPem {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    kid: keyId(publicKey),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export interface SignRequest {
  aud: string;
  scope: TokenScope[];
  sub?: string;
  ttlSeconds?: number;
}

/** Signs tokens with one private key; `now` is injectable for tests. */
export class TokenSigner {
  readonly kid: string;
  private readonly key: KeyObject;
  private readonly issuer: TokenIssuer;
  private readonly now: () => number;

  constructor(key: KeyObject, issuer: TokenIssuer, now: () => number = Date.now) {
    if (key.asymmetricKeyType !== "ed25519")
      throw new Error("the signing key must be an Ed25519 private key");
    this.key = key;
    this.kid = keyId(createPublicKey(key));
    this.issuer = issuer;
    this.now = now;
  }

  async sign(req: SignRequest): Promise<string> {
    const ttl = Math.min(req.ttlSeconds ?? TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS);
    const iat = Math.floor(this.now() / 1000);
    const jwt = new SignJWT({ scope: req.scope, ...(req.sub ? { sub: req.sub } : {}) })
      .setProtectedHeader({ alg: "EdDSA", kid: this.kid, typ: "agentry-token" })
      .setIssuer(this.issuer)
      .setAudience(req.aud)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl);
    return jwt.sign(this.key);
  }
}

/** Why a call was refused: 401 (no or bad token) or 403 (a good token that does not open this). */
export class TokenError extends Error {
  readonly status: 401 | 403;
  constructor(status: 401 | 403, message: string) {
    super(message);
    this.status = status;
  }
}

export interface VerifyRequest {
  /** Audiences this call may be made to (e.g. this pod, or the workspace in the URL). */
  audiences: string[];
  scope: TokenScope;
}

/**
 * Checks tokens against the trusted public keys: PEM files in a directory (a mounted
 * Secret, re-read when it changes, so a rotated key is picked up) or keys given directly.
 */
export class TokenVerifier {
  private readonly dir: string | undefined;
  private keys = new Map<string, KeyObject>();
  private stamp = "";
  private readonly now: () => number;

  constructor(source: { dir: string } | { keys: KeyObject[] }, now: () => number = Date.now) {
    this.now = now;
    if ("dir" in source) {
      this.dir = source.dir;
      this.reload();
    } else {
      for (const k of source.keys) this.keys.set(keyId(k), k);
    }
  }

  /** Number of trusted keys (0 means every call is refused). */
  get size(): number {
    this.reload();
    return this.keys.size;
  }

  private reload(): void {
    if (!this.dir) return;
    let names: string[];
    try {
      names = readdirSync(this.dir)
        .filter((n) => !n.startsWith("."))
        .sort();
    } catch {
      this.keys.clear();
      return;
    }
    const stamp = names.map((n) => `${n}@${statMtime(join(this.dir!, n))}`).join(",");
    if (stamp === this.stamp) return;
    const keys = new Map<string, KeyObject>();
    for (const n of names) {
      try {
        const k = createPublicKey(readFileSync(join(this.dir, n)));
        if (k.asymmetricKeyType === "ed25519") keys.set(keyId(k), k);
      } catch {
        // not a public key (e.g. the Secret's other files): ignored
      }
    }
    this.keys = keys;
    this.stamp = stamp;
  }

  /** The token's claims when it opens `req`; else a TokenError. */
  async verify(authorization: string | undefined, req: VerifyRequest): Promise<TokenClaims> {
    const m = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(authorization ?? "");
    if (!m)
      throw new TokenError(401, "missing bearer token: calls need a token signed by the operator or gateway");
    const token = m[1]!;
    this.reload();
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new TokenError(401, "malformed token");
    }
    const key = kid ? this.keys.get(kid) : undefined;
    if (!key) throw new TokenError(401, "token signed by an unknown key");
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ["EdDSA"],
        typ: "agentry-token",
        currentDate: new Date(this.now()),
        clockTolerance: 5,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new TokenError(401, "token expired");
      throw new TokenError(401, "invalid token");
    }
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success) throw new TokenError(401, "token claims are not agentry's");
    if (!req.audiences.includes(claims.data.aud))
      throw new TokenError(
        403,
        `token is for ${claims.data.aud}, not for this ${req.audiences[0]?.split(":")[0] ?? "target"}`,
      );
    if (!claims.data.scope.includes(req.scope))
      throw new TokenError(
        403,
        `token does not allow ${req.scope} (it allows ${claims.data.scope.join(", ")})`,
      );
    return claims.data;
  }
}

function statMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * A token mounted as a file (a Secret key the operator refreshes), read again at every call
 * so a refreshed token is used as soon as the kubelet has written it; undefined when the
 * file is missing or empty.
 */
export function readTokenFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
