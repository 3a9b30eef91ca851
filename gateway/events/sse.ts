// GET /v1/watch/namespaces/{namespace}/{plural}: Server-Sent Events of one kind in one
// namespace (event: ADDED|MODIFIED|DELETED, data: the object). Resumable with
// Last-Event-ID; `event: reset` tells a client whose position is no longer known to list
// again. Heartbeat comments keep proxies from closing idle streams; a client that does not
// read (more than clientBufferBytes pending) is disconnected and can resume. An open stream
// is authenticated and authorised again every reauthorizeMs: once the caller's token or its
// permission to watch is gone, it gets `event: revoked` and the stream ends. A caller has at
// most maxStreamsPerCaller streams open at once (on this replica).
import type { Request, RequestHandler, Response } from "express";
import { KINDS } from "../../api/v1alpha1/index.ts";
import type { AccessReview } from "../auth/access.ts";
import type { Authenticator } from "../auth/authenticate.ts";
import type { Identity } from "../auth/identity.ts";
import type { GatewayMetrics } from "../metrics.ts";
import { problemOf } from "../problem.ts";
import { compareIds, validId, type StreamEvent } from "./bus.ts";
import { streamName, type EventHub } from "./hub.ts";

export interface SseOptions {
  /** SubjectAccessReviews (the gateway's shared, briefly remembered answers). */
  review: AccessReview;
  heartbeatMs: number;
  clientBufferBytes: number;
  /** Authenticates an open stream's caller again (its bearer token); none: never re-checked. */
  authenticate?: Authenticator;
  /** How often an open stream's caller is authenticated and authorised again (default 30 s). */
  reauthorizeMs?: number;
  /** Streams one caller (user) may have open at once on this replica (default 10). */
  maxStreamsPerCaller?: number;
  /**
   * Aborted when the gateway shuts down: every open stream is told to reconnect (an
   * `event: shutdown` frame, then the end) and new ones are refused with 503 and Retry-After.
   */
  shutdown?: AbortSignal;
}

const shuttingDown = () =>
  problemOf(503, "the gateway is shutting down; reconnect (with Last-Event-ID) to another replica", {
    headers: { "retry-after": "1" },
  });

/** 503 for a watch while the event bus (Redis) is unreachable: nothing to stream from. */
const busDown = () =>
  problemOf(
    503,
    "live events are unavailable: the gateway cannot reach Redis, which carries its event streams; retry later (REST calls keep working)",
    { extra: { cause: "redis" }, headers: { "retry-after": "2" } },
  );

const frame = (e: StreamEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`;

export function sseHandler(hub: EventHub, metrics: GatewayMetrics, options: SseOptions): RequestHandler {
  /** May `who` watch `plural` in `namespace`? */
  const authorize = (who: Identity, plural: string, namespace: string) =>
    options.review(who, { verb: "watch", resource: plural, namespace });
  const maxStreams = options.maxStreamsPerCaller ?? 10;
  const open = new Map<string, number>();
  const release = (user: string) => {
    const n = (open.get(user) ?? 1) - 1;
    if (n > 0) open.set(user, n);
    else open.delete(user);
  };
  return async (req: Request, res: Response) => {
    if (options.shutdown?.aborted) throw shuttingDown();
    const { namespace, plural } = req.params as { namespace: string; plural: string };
    const def = KINDS.find((k) => k.plural === plural);
    if (!def)
      throw problemOf(404, `unknown resource ${plural}; one of ${KINDS.map((k) => k.plural).join(", ")}`);
    const who = res.locals.identity as Identity;
    const decision = await authorize(who, plural, namespace);
    if (!decision.allowed)
      throw problemOf(
        403,
        `${who.user} may not watch ${plural} in namespace ${namespace}${decision.reason ? `: ${decision.reason}` : ""}`,
      );
    if ((open.get(who.user) ?? 0) >= maxStreams)
      throw problemOf(
        429,
        `${who.user} has ${maxStreams} event streams open, the most one caller may; close one, then retry`,
        { headers: { "retry-after": "5" } },
      );
    // Taken now, before any await, so concurrent requests cannot pass the cap together.
    open.set(who.user, (open.get(who.user) ?? 0) + 1);
    let held = true;
    const releaseSlot = () => {
      if (held) release(who.user);
      held = false;
    };
    try {
      await serve(req, res, def, who, namespace, plural, releaseSlot);
    } catch (err) {
      releaseSlot();
      throw err;
    }
  };

  async function serve(
    req: Request,
    res: Response,
    def: (typeof KINDS)[number],
    who: Identity,
    namespace: string,
    plural: string,
    releaseSlot: () => void,
  ): Promise<void> {
    const lastId =
      req.get("last-event-id") ??
      (typeof req.query.lastEventId === "string" ? req.query.lastEventId : undefined);
    if (lastId !== undefined && !validId(lastId))
      throw problemOf(400, `Last-Event-ID "${lastId}" is not an event id of this gateway`);

    const ref = { apiVersion: def.apiVersion, kind: def.kind, namespace };
    const stream = streamName(ref);
    const bus = hub.eventBus;
    if (!bus.available()) throw busDown();
    let last = lastId;
    let replaying = true;
    const queued: StreamEvent[] = [];
    let closed = false;
    const write = (e: StreamEvent) => {
      if (closed) return;
      if (last && compareIds(e.id, last) <= 0) return; // already sent
      last = e.id;
      res.write(frame(e));
      metrics.sseEvents.inc({ kind: def.kind });
      if (res.writableLength > options.clientBufferBytes) {
        closed = true;
        res.end(); // too slow: drop; the client resumes with Last-Event-ID
      }
    };
    let unsubscribe: () => void = () => undefined;
    let releaseStream: () => void = () => undefined;
    let missed: StreamEvent[] | undefined = [];
    try {
      unsubscribe = await bus.subscribe(stream, (e) => (replaying ? queued.push(e) : write(e)));
      releaseStream = await hub.acquire(ref);
      if (lastId !== undefined) missed = await bus.since(stream, lastId);
    } catch (err) {
      unsubscribe();
      releaseStream();
      throw bus.available() ? err : busDown();
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write(`retry: 2000\n: stream ${stream}\n\n`);
    metrics.sseClients.inc({ kind: def.kind });
    const heartbeat = setInterval(() => res.write(`: heartbeat\n\n`), options.heartbeatMs);
    const recheck = setInterval(
      () => void stillAllowed().then((why) => why && revoke(why)),
      options.reauthorizeMs ?? 30_000,
    );
    const cleanup = () => {
      closed = true;
      clearInterval(heartbeat);
      clearInterval(recheck);
      unsubscribe();
      releaseStream();
      releaseSlot();
      metrics.sseClients.dec({ kind: def.kind });
    };
    res.once("close", cleanup);
    // Shutting down: say so, with a short reconnect delay, and end; the client resumes elsewhere.
    const goAway = () => {
      if (closed) return;
      metrics.sseClosed.inc({ reason: "shutdown" });
      res.write(
        `retry: 500\nevent: shutdown\ndata: ${JSON.stringify({ reason: "the gateway is shutting down; reconnect with Last-Event-ID" })}\n\n`,
      );
      closed = true;
      res.end();
    };
    options.shutdown?.addEventListener("abort", goAway, { once: true });
    res.once("close", () => options.shutdown?.removeEventListener("abort", goAway));
    /** Why the caller may no longer watch, or undefined (also when the check itself failed). */
    const stillAllowed = async (): Promise<string | undefined> => {
      try {
        if (options.authenticate) {
          const again = await options.authenticate(req.get("authorization"));
          if (again.user !== who.user) return "the bearer token now belongs to someone else";
        }
        const d = await authorize(who, plural, namespace);
        return d.allowed ? undefined : `${who.user} may no longer watch ${plural} in namespace ${namespace}`;
      } catch (err) {
        const status = (err as { status?: number }).status;
        // A definite no: the token is no longer valid. Anything else (the apiserver is
        // unreachable, a limit): keep the stream and ask again next time.
        return status === 401 ? "the bearer token is no longer valid" : undefined;
      }
    };
    const revoke = (reason: string) => {
      if (closed) return;
      metrics.sseClosed.inc({ reason: "revoked" });
      res.write(`event: revoked\ndata: ${JSON.stringify({ reason })}\n\n`);
      closed = true;
      res.end();
    };
    if (missed === undefined) {
      res.write(
        `event: reset\ndata: ${JSON.stringify({ reason: "the position of Last-Event-ID is no longer known; list again, then watch" })}\n\n`,
      );
      last = undefined;
    } else missed.forEach(write);
    replaying = false;
    queued.forEach(write);
    queued.length = 0;
  }
}
