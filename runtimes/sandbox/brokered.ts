// The sandbox's way to its workspaces' objects: pre-signed URLs from the operator's store
// broker (contracts/store.ts), never the store's credentials. Each call asks the broker for
// the URL of the one operation it needs, authenticated by the pod's ServiceAccount token
// (re-read from its file: the kubelet rotates it), then performs it with plain HTTP. No
// redirect is followed; answers from the broker are size-capped.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { request as httpRequest } from "../../lib/http/nodehttp.ts";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import {
  MAX_PRESIGN_OBJECTS,
  PresignAnswer,
  type PresignOp,
  type PresignRequest,
  STORE_PRESIGN_PATH,
} from "../../contracts/store.ts";
import {
  checkRelativeKey,
  ObjectNotFound,
  type ObjectAccess,
  type ObjectBody,
  type ObjectStore,
} from "../../lib/objects.ts";

export class BrokerError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface BrokeredOptions {
  /** Base URL of the operator's broker (AGENTRY_SANDBOX_STORE_BROKER). */
  brokerUrl: string;
  /** The pod's ServiceAccount token for the broker (AGENTRY_SANDBOX_STORE_TOKEN_FILE). */
  tokenFile: string;
  /** Bound of one broker call or one object operation without a signal (default 30 s). */
  timeoutMs?: number;
}

const MAX_BROKER_ANSWER = 4 * 1024 * 1024;
const MAX_LIST_PAGE = 8 * 1024 * 1024;

export class BrokeredObjects implements ObjectStore {
  private readonly o: BrokeredOptions;

  constructor(options: BrokeredOptions) {
    this.o = options;
  }

  workspace(id: string): ObjectAccess {
    return new BrokeredWorkspace(this, id);
  }

  get timeoutMs(): number {
    return this.o.timeoutMs ?? 30_000;
  }

  /** Asks the broker for URLs of `objects` of workspace `id`. */
  async presign(
    id: string,
    objects: PresignRequest["objects"],
    signal?: AbortSignal,
  ): Promise<PresignAnswer> {
    const token = (
      await readFile(this.o.tokenFile, "utf8").catch((err: unknown) => {
        throw new BrokerError(
          0,
          `cannot read the pod's token for the store broker (${this.o.tokenFile}): ${String(err)}`,
        );
      })
    ).trim();
    const body = JSON.stringify({ workspace: id, objects } satisfies PresignRequest);
    const res = await send(
      "POST",
      new URL(STORE_PRESIGN_PATH, this.o.brokerUrl).toString(),
      {
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        bytes: Buffer.from(body),
      },
      signal ?? AbortSignal.timeout(this.timeoutMs),
    );
    const text = (await readAll(res, MAX_BROKER_ANSWER)).toString("utf8");
    if (res.statusCode !== 200) {
      let detail = text.slice(0, 500);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not a problem document
      }
      throw new BrokerError(res.statusCode ?? 0, `store broker answered ${res.statusCode}: ${detail}`);
    }
    return PresignAnswer.parse(JSON.parse(text));
  }
}

class BrokeredWorkspace implements ObjectAccess {
  private readonly broker: BrokeredObjects;
  private readonly id: string;

  constructor(broker: BrokeredObjects, id: string) {
    this.broker = broker;
    this.id = id;
  }

  private async one(op: PresignOp, key: string, signal?: AbortSignal, continuationToken?: string) {
    const answer = await this.broker.presign(
      this.id,
      [{ op, key, ...(continuationToken ? { continuationToken } : {}) }],
      signal,
    );
    return { ...answer.urls[0]!, keyPrefix: answer.keyPrefix };
  }

  private signal(signal?: AbortSignal): AbortSignal {
    return signal ?? AbortSignal.timeout(this.broker.timeoutMs);
  }

  async put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void> {
    checkRelativeKey(key);
    const { url } = await this.one("put", key, signal);
    const res = await send(
      "PUT",
      url,
      "file" in body
        ? { file: body.file, size: body.size }
        : {
            bytes: Buffer.from(body.bytes),
            ...(body.contentType ? { headers: { "content-type": body.contentType } } : {}),
          },
      this.signal(signal),
    );
    await expectOk(res, `PUT ${key}`);
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    checkRelativeKey(key);
    const { url } = await this.one("get", key, signal);
    const res = await send("GET", url, {}, this.signal(signal));
    if (res.statusCode === 404) {
      res.resume();
      throw new ObjectNotFound(`${key} not found`);
    }
    await expectOk(res, `GET ${key}`, true);
    return res;
  }

  async exists(key: string, signal?: AbortSignal): Promise<boolean> {
    checkRelativeKey(key);
    const { url } = await this.one("head", key, signal);
    const res = await send("HEAD", url, {}, this.signal(signal));
    res.resume();
    if (res.statusCode === 404) return false;
    await expectOk(res, `HEAD ${key}`);
    return true;
  }

  async list(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const { url, keyPrefix } = await this.one("list", prefix, signal, token);
      const res = await send("GET", url, {}, this.signal(signal));
      await expectOk(res, `list ${prefix}`, true);
      const page = parseListPage((await readAll(res, MAX_LIST_PAGE)).toString("utf8"));
      for (const k of page.keys) if (k.startsWith(keyPrefix)) keys.push(k.slice(keyPrefix.length));
      token = page.next;
    } while (token);
    return keys;
  }

  async delete(keys: string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += MAX_PRESIGN_OBJECTS) {
      const batch = keys.slice(i, i + MAX_PRESIGN_OBJECTS);
      for (const k of batch) checkRelativeKey(k);
      const answer = await this.broker.presign(
        this.id,
        batch.map((key) => ({ op: "delete" as const, key })),
        signal,
      );
      for (const [j, { url }] of answer.urls.entries()) {
        const res = await send("DELETE", url, {}, this.signal(signal));
        res.resume();
        if (res.statusCode !== 404) await expectOk(res, `DELETE ${batch[j]}`);
      }
    }
  }
}

/** The keys and the continuation token of one ListObjectsV2 answer (XML). */
export function parseListPage(xml: string): { keys: string[]; next?: string } {
  const decode = (s: string) =>
    s
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&#(\d+);/g, (_m, n: string) => String.fromCodePoint(Number(n)))
      .replace(/&#x([0-9a-f]+);/gi, (_m, n: string) => String.fromCodePoint(parseInt(n, 16)))
      .replace(/&amp;/g, "&");
  const keys = [...xml.matchAll(/<Contents>[\s\S]*?<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Contents>/g)].map((m) =>
    decode(m[1]!),
  );
  const truncated = /<IsTruncated>\s*true\s*<\/IsTruncated>/.test(xml);
  const next = /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1];
  return { keys, ...(truncated && next ? { next: decode(next) } : {}) };
}

interface SendBody {
  headers?: Record<string, string>;
  bytes?: Buffer;
  file?: string;
  size?: number;
}

/** One HTTP request (no redirects followed); resolves with the answer once its head is in. */
function send(method: string, url: string, body: SendBody, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const length = body.bytes?.length ?? body.size;
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(u, {
      method,
      signal,
      headers: { ...body.headers, ...(length !== undefined ? { "content-length": String(length) } : {}) },
    });
    req.once("response", resolve);
    req.once("error", (err) =>
      reject(new BrokerError(0, `${method} ${u.host}${u.pathname}: ${err.message}`)),
    );
    if (body.bytes) req.end(body.bytes);
    else if (body.file) createReadStream(body.file).once("error", reject).pipe(req);
    else req.end();
  });
}

async function readAll(res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw new BrokerError(0, `answer larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Throws a BrokerError for a non-2xx answer (with the store's error code); drains the body unless kept. */
async function expectOk(res: IncomingMessage, what: string, keep = false): Promise<void> {
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) {
    if (!keep) res.resume();
    return;
  }
  const text = (await readAll(res, 64 * 1024).catch(() => Buffer.alloc(0))).toString("utf8");
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  throw new BrokerError(status, `${what}: the store answered ${status}${code ? ` ${code}` : ""}`);
}
