// The store broker's HTTP server (contracts/store.ts): sandboxes exchange their pod's bound
// ServiceAccount token for pre-signed URLs of their own workspaces' objects. Every replica
// serves it from its informer cache (a standby too); nothing here writes to the cluster.
import { createHash } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "../../lib/http/nodehttp.ts";
import type { AddressInfo } from "node:net";
import {
  type PresignAnswer,
  PresignRequest,
  STORE_BROKER_AUDIENCE,
  STORE_PRESIGN_PATH,
} from "../../contracts/store.ts";
import { json, readJson } from "../../lib/http/body.ts";
import { methodNotAllowed, ProblemError, sendProblem } from "../../lib/http/problem.ts";
import type { KubeClient } from "../../lib/kube/client.ts";
import type { Log } from "../../lib/log.ts";
import { checkRelativeKey, type S3Objects, s3sdk, workspacePrefix } from "../../lib/objects.ts";
import { decide, type BrokerInputs, type PodCaller } from "./policy.ts";
import { StoreUnavailable, type FleetStores } from "./stores.ts";

/** Lifetime of the URLs handed out. */
export const PRESIGN_TTL_SECONDS = 300;

export interface BrokerDeps {
  /** The pod behind a bearer token, or undefined when the apiserver refuses it. */
  review: (token: string) => Promise<PodCaller | undefined>;
  /** Gathers what decide() needs from the cache. */
  inputs: (caller: PodCaller, workspaceId: string) => Omit<BrokerInputs, "caller" | "workspaceId">;
  stores: Pick<FleetStores, "forFleet">;
  log: Log;
  onRequest?: (outcome: string) => void;
}

export class StoreBroker {
  private readonly d: BrokerDeps;

  constructor(deps: BrokerDeps) {
    this.d = deps;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.route(req, res).catch((err: unknown) => {
      const status = err instanceof ProblemError ? err.status : 500;
      this.d.onRequest?.(String(status));
      sendProblem(req, res, err, this.d.log, "store-broker");
    });
  };

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (path !== STORE_PRESIGN_PATH) throw new ProblemError(404, `no route for ${path}`);
    if (req.method !== "POST") throw methodNotAllowed(["POST"]);
    const token = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!token) throw new ProblemError(401, "a bearer token (the pod's ServiceAccount token) is required");
    const caller = await this.d.review(token);
    if (!caller)
      throw new ProblemError(
        401,
        `the token is not a valid pod-bound ServiceAccount token for audience ${STORE_BROKER_AUDIENCE}`,
      );
    const body = await readJson(req, PresignRequest, 256 * 1024);
    const decision = decide({
      caller,
      workspaceId: body.workspace,
      ...this.d.inputs(caller, body.workspace),
    });
    if (!decision.allow) {
      this.d.log.info("store broker refused", {
        pod: `${caller.namespace}/${caller.pod}`,
        reason: decision.reason,
      });
      throw new ProblemError(decision.status, decision.reason);
    }
    let store;
    try {
      store = await this.d.stores.forFleet(decision.fleet);
    } catch (err) {
      if (err instanceof StoreUnavailable) throw new ProblemError(503, err.message);
      throw err;
    }
    if (!store) throw new ProblemError(409, `fleet ${decision.fleet.metadata.name} has no object store`);
    const answer = await presign(store.objects, body.workspace, body.objects);
    this.d.onRequest?.("200");
    json(res, 200, answer);
  }
}

/** Pre-signed URLs for objects of workspace `id`, keys relative to its prefix. */
export async function presign(
  objects: S3Objects,
  id: string,
  items: PresignRequest["objects"],
  ttlSeconds = PRESIGN_TTL_SECONDS,
): Promise<PresignAnswer> {
  const root = workspacePrefix(objects.prefix, id);
  const Bucket = objects.bucket;
  // Loaded on first use, as the SDK itself (lib/objects.ts).
  const { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } =
    await s3sdk();
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const urls = await Promise.all(
    items.map(async (item) => {
      if (item.op === "list") checkRelativeKey(item.key.replace(/\/$/, ""), true);
      else checkRelativeKey(item.key);
      const Key = `${root}/${item.key}`;
      const command =
        item.op === "get"
          ? new GetObjectCommand({ Bucket, Key })
          : item.op === "put"
            ? new PutObjectCommand({ Bucket, Key })
            : item.op === "head"
              ? new HeadObjectCommand({ Bucket, Key })
              : item.op === "delete"
                ? new DeleteObjectCommand({ Bucket, Key })
                : new ListObjectsV2Command({
                    Bucket,
                    Prefix: Key,
                    ...(item.continuationToken ? { ContinuationToken: item.continuationToken } : {}),
                  });
      const method =
        item.op === "list" || item.op === "get"
          ? "GET"
          : item.op === "put"
            ? "PUT"
            : item.op === "head"
              ? "HEAD"
              : "DELETE";
      return {
        method,
        url: await getSignedUrl(objects.client, command as never, { expiresIn: ttlSeconds }),
      } as const;
    }),
  );
  return {
    expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    keyPrefix: `${root}/`,
    urls,
  };
}

/**
 * Reviews pod-bound ServiceAccount tokens (audience agentry-operator) with the apiserver,
 * remembering answers for a short time by the token's hash.
 */
export class PodTokenReviewer {
  private readonly client: KubeClient;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, { at: number; caller: PodCaller | undefined }>();

  constructor(client: KubeClient, ttlMs = 30_000) {
    this.client = client;
    this.ttlMs = ttlMs;
  }

  readonly review = async (token: string): Promise<PodCaller | undefined> => {
    const key = createHash("sha256").update(token).digest("hex");
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.caller;
    const answer = await this.client.request<{
      status?: {
        authenticated?: boolean;
        audiences?: string[];
        user?: { username?: string; extra?: Record<string, string[]> };
      };
    }>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [STORE_BROKER_AUDIENCE] },
      },
    });
    const s = answer.status;
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(s?.user?.username ?? "");
    const pod = s?.user?.extra?.["authentication.kubernetes.io/pod-name"]?.[0];
    const uid = s?.user?.extra?.["authentication.kubernetes.io/pod-uid"]?.[0];
    const caller =
      s?.authenticated && sa && pod && uid && (s.audiences ?? []).includes(STORE_BROKER_AUDIENCE)
        ? { namespace: sa[1]!, pod, uid }
        : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), caller });
    return caller;
  };
}

export async function startBrokerServer(
  addr: { host: string; port: number },
  broker: StoreBroker,
): Promise<{ server: Server; port: number }> {
  const server = createServer(broker.handle);
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
