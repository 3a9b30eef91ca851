// Kubernetes TokenReview: asks the apiserver whether a bearer token is valid and whose it
// is. Answers are cached briefly by token hash so a busy caller costs one review per TTL.
import type { KubeClient } from "../../lib/kube/client.ts";
import type { Identity } from "./identity.ts";
import { hashToken } from "./tokens.ts";

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; groups?: string[] };
  error?: string;
}

export class TokenReviewer {
  private readonly client: KubeClient;
  private readonly ttlMs: number;
  private readonly audiences: string[] | undefined;
  private readonly cache = new Map<string, { at: number; identity: Identity | undefined }>();

  constructor(client: KubeClient, options: { ttlMs?: number; audiences?: string[] } = {}) {
    this.client = client;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.audiences = options.audiences;
  }

  /** The identity behind the token, or undefined when the apiserver does not accept it. */
  async review(token: string): Promise<Identity | undefined> {
    const key = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.identity;
    const answer = await this.client.request<{ status?: TokenReviewStatus }>(
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
    const s = answer.status;
    const identity =
      s?.authenticated && s.user?.username
        ? { user: s.user.username, groups: s.user.groups ?? [], via: "tokenreview" as const }
        : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: now, identity });
    return identity;
  }
}
