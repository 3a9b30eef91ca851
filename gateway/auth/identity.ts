// Who is calling: the identity the gateway impersonates towards the apiserver and records
// in the audit log.
export interface Identity {
  user: string;
  groups: string[];
  /** How the caller was authenticated: token (static bearer token), tokenreview, anonymous. */
  via: "token" | "tokenreview" | "anonymous";
}

export const ANONYMOUS: Identity = {
  user: "system:anonymous",
  groups: ["system:unauthenticated"],
  via: "anonymous",
};
