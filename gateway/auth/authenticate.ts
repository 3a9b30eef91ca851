// Authentication: a bearer token is looked up among the static tokens first, then (when
// enabled) reviewed by the apiserver. No token means anonymous, only when explicitly allowed.
// A token the gateway has not seen costs a TokenReview, so those are limited per client
// address (`reviewGate`): beyond it the answer is 429 and the apiserver is not asked.
import { problemOf } from "../problem.ts";
import type { RateDecision } from "../ratelimit.ts";
import { ANONYMOUS, type Identity } from "./identity.ts";
import { hashToken, type StaticTokens } from "./tokens.ts";
import type { TokenReviewer } from "./tokenreview.ts";

export interface AuthOptions {
  tokens?: () => StaticTokens;
  tokenReview?: TokenReviewer;
  allowAnonymous?: boolean;
  /** May this client address have a TokenReview for a token not seen lately? */
  reviewGate?: (address: string) => Promise<RateDecision>;
}

export interface AuthContext {
  /** The client's address: TokenReviews for new tokens are limited per address. */
  address?: string;
}

export interface Authenticator {
  (authorization: string | undefined, context?: AuthContext): Promise<Identity>;
  /**
   * The identity at once when no request is needed to know it (anonymous allowed, a static
   * token, a token reviewed lately); undefined otherwise (ask the authenticator itself, which
   * also gives the 401s).
   */
  now?: (authorization: string | undefined) => Identity | undefined;
}

const challenge = { "www-authenticate": 'Bearer realm="agentry"' };

/** The bearer token of an Authorization header, or undefined when the header is not one. */
function bearer(authorization: string): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

export function createAuthenticator(options: AuthOptions): Authenticator {
  const authenticate: Authenticator = async (authorization, context = {}) => {
    if (!authorization) {
      if (options.allowAnonymous) return ANONYMOUS;
      throw problemOf(401, "send an Authorization: Bearer <token> header", { headers: challenge });
    }
    const token = bearer(authorization);
    if (!token)
      throw problemOf(401, "the Authorization header must be 'Bearer <token>'", { headers: challenge });
    const known = options.tokens?.().get(hashToken(token));
    if (known) return known;
    const reviewer = options.tokenReview;
    if (reviewer) {
      if (reviewer.known(token) === undefined && options.reviewGate && context.address !== undefined) {
        const decision = await options.reviewGate(context.address);
        if (!decision.allowed)
          throw problemOf(
            429,
            `too many unrecognised bearer tokens from ${context.address}; retry after the Retry-After seconds`,
            { headers: { "retry-after": String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) } },
          );
      }
      const reviewed = await reviewer.review(token);
      if (reviewed) return reviewed;
    }
    throw problemOf(401, "the bearer token is not valid", { headers: challenge });
  };
  authenticate.now = (authorization) => {
    if (!authorization) return options.allowAnonymous ? ANONYMOUS : undefined;
    const token = bearer(authorization);
    if (!token) return undefined;
    const known = options.tokens?.().get(hashToken(token)) ?? options.tokenReview?.known(token);
    return known && !(known instanceof Promise) ? known : undefined;
  };
  return authenticate;
}
