// Reads an agent's own readiness answer (GET /readyz: {"status": "starting"|"error"|...,
// "reason"}) while Kubernetes reports its Pod running but not ready, so readinessReason
// can say what the agent itself says is missing. Answers are kept a few seconds per Pod;
// an agent that cannot be reached (a NetworkPolicy, no route from where the operator
// runs) gives undefined and status falls back to what Kubernetes knows.
// Only a Pod its AgentRuntime controls (uid checked) is asked, with a token for that Pod
// allowing status (the agent gives its reason only to such a token); a redirect is never
// followed and at most MAX_ANSWER_BYTES of the answer are read.
import { Audience } from "../../../contracts/tokens.ts";
import type { TokenSource } from "../keys.ts";
import { agentPodProblem } from "../../../lib/kube/owners.ts";
import type { PodAddressInfo } from "../../../lib/kube/podaddresses.ts";

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
  /** The clock the cached answers expire by (the controllers' clock, injected in tests). */
  now?: () => Date;
}

const MAX_REASON = 512;
const MAX_ANSWER_BYTES = 16 * 1024;

type ProbedPod = PodAddressInfo & {
  metadata: { uid?: string; ownerReferences?: { kind: string; uid: string; controller?: boolean }[] };
};

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
  private readonly tokens: TokenSource;
  private readonly timeoutMs: number;
  private readonly ttlMs: number;
  private readonly fetch: typeof fetch;
  private readonly now: () => Date;
  private readonly cache = new Map<string, { at: number; answer: AgentReadiness | undefined }>();

  constructor(addresses: PodAddressResolver, tokens: TokenSource, options: AgentProbeOptions = {}) {
    this.addresses = addresses;
    this.tokens = tokens;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.ttlMs = options.ttlMs ?? 2000;
    this.fetch = options.fetch ?? fetch;
    this.now = options.now ?? (() => new Date());
  }

  /** The agent's own answer, when `pod` is controlled by the AgentRuntime `agentUid` and answers. */
  async readiness(
    pod: ProbedPod,
    agentUid: string | undefined,
    port: number,
  ): Promise<AgentReadiness | undefined> {
    if (agentPodProblem(pod, agentUid)) return undefined;
    const address = this.addresses.addressOf(pod, port);
    if (!address) return undefined;
    const key = `${pod.metadata.uid ?? ""}/${address}`;
    const hit = this.cache.get(key);
    if (hit && this.now().getTime() - hit.at < this.ttlMs) return hit.answer;
    let answer: AgentReadiness | undefined;
    try {
      const token = await this.tokens.token(Audience.pod(pod.metadata.namespace!, pod.metadata.name!), [
        "status",
      ]);
      const res = await this.fetch(`http://${address}/readyz`, {
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: { accept: "application/json", authorization: `Bearer ${token}` },
        redirect: "manual",
      });
      // A redirect is not an answer (and is never followed).
      answer = res.status >= 300 && res.status < 400 ? undefined : parseReadiness(await readJson(res));
      if (answer === undefined) await res.body?.cancel().catch(() => undefined);
    } catch {
      answer = undefined;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: this.now().getTime(), answer });
    return answer;
  }
}

/** The answer as JSON, reading at most MAX_ANSWER_BYTES (undefined beyond, or when not JSON). */
async function readJson(res: Response): Promise<unknown> {
  if (!res.body) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_ANSWER_BYTES) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}
