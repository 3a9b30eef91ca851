// Authentication: a bearer token is looked up among the static tokens first, then (when
// enabled) reviewed by the apiserver. No token means anonymous, only when explicitly allowed.
import { problemOf } from "../problem.ts";
import { ANONYMOUS, type Identity } from "./identity.ts";
import { hashToken, type StaticTokens } from "./tokens.ts";
import type { TokenReviewer } from "./tokenreview.ts";

export interface AuthOptions {
  tokens?: () => StaticTokens;
  tokenReview?: TokenReviewer;
  allowAnonymous?: boolean;
}

export type Authenticator = (authorization: string | undefined) => Promise<Identity>;

const challenge = { "www-authenticate": 'Bearer realm="agentry"' };

export function createAuthenticator(options: AuthOptions): Authenticator {
  return async (authorization) => {
    if (!authorization) {
      if (options.allowAnonymous) return ANONYMOUS;
      throw problemOf(401, "send an Authorization: Bearer <token> header", { headers: challenge });
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m?.[1])
      throw problemOf(401, "the Authorization header must be 'Bearer <token>'", { headers: challenge });
    const token = m[1];
    const known = options.tokens?.().get(hashToken(token));
    if (known) return known;
    if (options.tokenReview) {
      const reviewed = await options.tokenReview.review(token);
      if (reviewed) return reviewed;
    }
    throw problemOf(401, "the bearer token is not valid", { headers: challenge });
  };
}
