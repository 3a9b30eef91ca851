// Token checks for the runtimes' HTTP servers (sandbox, agent): a request either carries a
// token that opens the route (contracts/tokens.ts Access) or is answered as a problem, 401
// without a valid token, 403 with one for another audience or scope.
import type { IncomingMessage } from "node:http";
import type { Access, TokenClaims } from "../../contracts/tokens.ts";
import { TokenError, type TokenVerifier } from "../tokens.ts";
import { ProblemError } from "./problem.ts";

/** The token's claims when it opens `access`; else a ProblemError 401 or 403. */
export async function authorize(
  verifier: TokenVerifier,
  req: IncomingMessage,
  access: Access,
  realm: string,
): Promise<TokenClaims> {
  try {
    return await verifier.verify(req.headers.authorization, access);
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    const challenge =
      err.status === 401 ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="insufficient_scope"`;
    throw new ProblemError(err.status, err.message, { "www-authenticate": challenge });
  }
}
