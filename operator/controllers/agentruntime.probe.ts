// Reads an agent's own readiness answer (GET /readyz: {"status": "starting"|"error"|...,
// "reason"}) while Kubernetes reports its Pod running but not ready, so readinessReason
// can say what the agent itself says is missing. Answers are kept a few seconds per Pod;
// an agent that cannot be reached (a NetworkPolicy, no route from where the operator
// runs) gives undefined and status falls back to what Kubernetes knows.
import type { PodAddressInfo } from "./sandbox.io.ts";

export interface AgentReadiness {
  status: string;
  reason?: string;
}

export interface PodAddressResolver {
  addressOf(pod: PodAddressInfo, port: number): string | undefined;
}

export interface AgentProbeOptions {
  timeoutMs?: number;
  ttlMs?: number;
  fetch?: typeof fetch;
}

const MAX_REASON = 512;

/** The agent's answer as status text: a known shape, bounded, without control characters. */
export function parseReadiness(body: unknown): AgentReadiness | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { status, reason } = body as { status?: unknown; reason?: unknown };
  if (typeof status !== "string" || !/^[a-z-]{1,32}$/.test(status)) return undefined;
  const clean =
    typeof reason === "string"
      ? reason
          .replace(/[\p{Cc}\p{Cf}]+/gu, " ")
          .trim()
          .slice(0, MAX_REASON)
      : undefined;
  return clean ? { status, reason: clean } : { status };
}

export class AgentProbe {
  private readonly addresses: PodAddressResolver;
  private readonly timeoutMs: number;
  private readonly ttlMs: number;
  private readonly fetch: typeof fetch;
  private readonly cache = new Map<string, { at: number; answer: AgentReadiness | undefined }>();

  constructor(addresses: PodAddressResolver, options: AgentProbeOptions = {}) {
    this.addresses = addresses;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.ttlMs = options.ttlMs ?? 2000;
    this.fetch = options.fetch ?? fetch;
  }

  async readiness(
    pod: PodAddressInfo & { metadata: { uid?: string } },
    port: number,
  ): Promise<AgentReadiness | undefined> {
    const address = this.addresses.addressOf(pod, port);
    if (!address) return undefined;
    const key = `${pod.metadata.uid ?? ""}/${address}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.answer;
    let answer: AgentReadiness | undefined;
    try {
      const res = await this.fetch(`http://${address}/readyz`, {
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: { accept: "application/json" },
      });
      answer = parseReadiness(await res.json());
    } catch {
      answer = undefined;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), answer });
    return answer;
  }
}
