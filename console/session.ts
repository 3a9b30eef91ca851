// The signed-in session: the bearer token (in sessionStorage only: gone with the tab, never
// in a URL or a cookie), the typed client of the gateway made with it, and what happens on
// an error answer: a 401 anywhere ends the session and sends the person to sign in again
// with the gateway's reason; any other problem is thrown for the page to show.
import {
  createClient,
  ProblemError,
  unwrap,
  type AgentryClient,
  type Problem,
} from "../clients/typescript/index.ts";
import { navigate } from "./router.ts";

const TOKEN_KEY = "agentry.console.token";

/** Why the last session ended (shown on the sign-in page), if it did not end by choice. */
export let signInReason: string | undefined;

export function token(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function signIn(t: string): void {
  sessionStorage.setItem(TOKEN_KEY, t);
  signInReason = undefined;
  current = undefined;
}

export function signOut(reason?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  signInReason = reason;
  current = undefined;
  navigate("/ui/signin");
}

let current: AgentryClient | undefined;

/** The gateway's typed client, carrying the session's token. */
export function api(): AgentryClient {
  current ??= createClient({ baseUrl: location.origin, token: token() });
  return current;
}

/** The text a person reads for an error: the problem's title and detail. */
export function describe(err: unknown): string {
  if (err instanceof ProblemError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A ProblemError from a non-2xx fetch Response (for routes read with fetch directly). */
export async function problemOf(res: Response): Promise<ProblemError> {
  let p: Partial<Problem>;
  try {
    p = (await res.json()) as Partial<Problem>;
  } catch {
    p = { title: `HTTP ${res.status}` };
  }
  return new ProblemError(res.status, p);
}

/** Ends the session on a 401; returns the error for the caller to throw or show. */
export function checked(err: unknown): unknown {
  if (err instanceof ProblemError && err.status === 401) signOut(describe(err));
  return err;
}

/** The data of a client call; a problem answer is thrown (after a 401 has ended the session). */
export async function call<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  try {
    return unwrap(await p);
  } catch (err) {
    throw checked(err);
  }
}

/** fetch with the session's token, for streamed and binary routes; a problem answer is thrown. */
export async function authFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set("authorization", `Bearer ${t}`);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) throw checked(await problemOf(res));
  return res;
}

export const enc = encodeURIComponent;
