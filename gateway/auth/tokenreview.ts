// Kubernetes TokenReview: asks the apiserver whether a bearer token is valid and whose it
// is. Answers are cached by token hash: accepted tokens for `ttlMs`, refused ones for the
// shorter `negativeTtlMs`, each in its own bounded map (oldest entries go first), so a flood
// of bad tokens can neither grow memory nor push out the good ones. Concurrent reviews of
// one token share a single request.
import type { KubeClient } from "../../lib/kube/client.ts";
import type { Identity } from "./identity.ts";
import { hashToken } from "./tokens.ts";

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; groups?: string[] };
  error?: string;
}

export type ReviewResult = "authenticated" | "rejected" | "error";

export interface TokenReviewOptions {
  /** How long an accepted token is remembered (default 10 s). */
  ttlMs?: number;
  /** How long a refused token is remembered (default 5 s). */
  negativeTtlMs?: number;
  /** Most tokens remembered, per kind of answer (default 10,000). */
  maxEntries?: number;
  audiences?: string[];
  /** Told of every TokenReview sent to the apiserver, with its outcome. */
  onReview?: (result: ReviewResult) => void;
  now?: () => number;
}

/** A map that forgets entries after a time and drops its oldest entries beyond a size. */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { at: number; value: V }>();
  private readonly ttlMs: number;
  private readonly max: number;
  constructor(ttlMs: number, max: number) {
    this.ttlMs = ttlMs;
    this.max = max;
  }
  get(key: string, now: number): { value: V } | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (now - hit.at >= this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: hit.value };
  }
  set(key: string, value: V, now: number): void {
    this.entries.delete(key);
    this.entries.set(key, { at: now, value });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }
  get size(): number {
    return this.entries.size;
  }
}

export class TokenReviewer {
  private readonly client: KubeClient;
  private readonly audiences: string[] | undefined;
  private readonly accepted: ExpiringMap<Identity>;
  private readonly refused: ExpiringMap<true>;
  private readonly inFlight = new Map<string, Promise<Identity | undefined>>();
  private readonly onReview: ((result: ReviewResult) => void) | undefined;
  private readonly now: () => number;

  constructor(client: KubeClient, options: TokenReviewOptions = {}) {
    this.client = client;
    this.audiences = options.audiences;
    const max = options.maxEntries ?? 10_000;
    this.accepted = new ExpiringMap(options.ttlMs ?? 10_000, max);
    this.refused = new ExpiringMap(options.negativeTtlMs ?? 5_000, max);
    this.onReview = options.onReview;
    this.now = options.now ?? (() => Date.now());
  }

  /**
   * What is already known of a token without asking the apiserver: its identity, null when
   * it was refused lately, or undefined when it would take a TokenReview. A review of it in
   * flight counts as known (the caller can wait for it).
   */
  known(token: string): Identity | null | Promise<Identity | undefined> | undefined {
    const key = hashToken(token);
    const now = this.now();
    const yes = this.accepted.get(key, now);
    if (yes) return yes.value;
    if (this.refused.get(key, now)) return null;
    return this.inFlight.get(key);
  }

  /** The identity behind the token, or undefined when the apiserver does not accept it. */
  async review(token: string): Promise<Identity | undefined> {
    const known = this.known(token);
    if (known === null) return undefined;
    if (known !== undefined) return known;
    const key = hashToken(token);
    const pending = this.ask(token, key).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, pending);
    return pending;
  }

  /** Remembered answers: accepted and refused tokens. */
  get cached(): { accepted: number; refused: number } {
    return { accepted: this.accepted.size, refused: this.refused.size };
  }

  private async ask(token: string, key: string): Promise<Identity | undefined> {
    let answer: { status?: TokenReviewStatus };
    try {
      answer = await this.client.request<{ status?: TokenReviewStatus }>(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {
          body: {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: { token, ...(this.audiences ? { audiences: this.audiences } : {}) },
          },
        },
      );
    } catch (err) {
      this.onReview?.("error");
      throw err;
    }
    const s = answer.status;
    const now = this.now();
    if (s?.authenticated && s.user?.username) {
      const identity: Identity = { user: s.user.username, groups: s.user.groups ?? [], via: "tokenreview" };
      this.accepted.set(key, identity, now);
      this.onReview?.("authenticated");
      return identity;
    }
    this.refused.set(key, true, now);
    this.onReview?.("rejected");
    return undefined;
  }
}
