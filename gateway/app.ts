// The gateway's Express 5 app, built from injected dependencies (Kubernetes client, store,
// limiter, authenticator, event stream) so tests build it the same way main.ts does.
import type { RequestListener } from "node:http";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { KINDS } from "../api/v1alpha1/index.ts";
import type { KubeClient } from "../lib/kube/client.ts";
import type { Logger } from "../lib/log.ts";
import type { Authenticator } from "./auth/authenticate.ts";
import type { Identity } from "./auth/identity.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { healthBody } from "../lib/http/health.ts";
import { openApiDocument } from "./openapi.ts";
import { methodNotAllowed, problemOf, sendProblem, toProblem } from "./problem.ts";
import type { RateLimiter } from "./ratelimit.ts";
import { AccessCache } from "./auth/access.ts";
import type { ReadCache } from "./cache/readcache.ts";
import type { DataPlaneOptions } from "./dataplane/common.ts";
import { execRouter } from "./dataplane/exec.ts";
import { filesRouter, UPLOAD_ROUTE } from "./dataplane/files.ts";
import { runsDataRouter } from "./dataplane/runs.ts";
import { sandboxesRouter } from "./dataplane/sandboxes.ts";
import { tasksRouter } from "./dataplane/tasks.ts";
import { DEFAULT_ADMISSION, type AdmissionSettings } from "./routes/admit.ts";
import { eventsRouter } from "./routes/events.ts";
import { permissionsRouter } from "./routes/permissions.ts";
import { allNamespacesRouter } from "./routes/allnamespaces.ts";
import { resourceRouter } from "./routes/resources.ts";
import { cachedReadRouter, fastReads } from "./routes/cached.ts";
import { runsRouter } from "./routes/runs.ts";
import { checkPathNames } from "./routes/validate.ts";
import { CONSOLE_PATH, consoleRouter } from "./console.ts";
import { admit, requestContext } from "./requests.ts";
import type { Store } from "./store/store.ts";
import { MAX_BODY_DEPTH, nestedDeeperThan } from "./depth.ts";

export interface GatewayDeps {
  kube: KubeClient;
  store: Store;
  authenticate: Authenticator;
  limiter: RateLimiter;
  metrics: GatewayMetrics;
  log: Logger;
  /** SSE handler for GET /v1/watch/namespaces/:namespace/:plural. */
  watch?: RequestHandler;
  /** Largest accepted request body (default 1mb). */
  bodyLimit?: string;
  /** Why the gateway is not ready, or undefined when it is. */
  ready?: () => Promise<string | undefined>;
  /** Policy of the admission rules run before writes (default: the webhook's defaults, no Secret checks). */
  admission?: AdmissionSettings;
  /** Per client address, every /v1 request, before authentication (none when unset). */
  addressLimiter?: RateLimiter;
  /**
   * Express's "trust proxy": the proxies (addresses, CIDRs, `loopback`...) whose
   * X-Forwarded-For names the client address. Unset: the connection's peer is the client.
   */
  trustProxy?: string | number;
  /**
   * The data plane (workspace files and exec, agent tasks, run logs): how to reach pods and
   * sign their tokens. Without it those routes are not served.
   */
  dataPlane?: DataPlaneOptions;
  /** Directory of the built web console (index.html and its bundle), served under /ui. */
  consoleDir?: string;
  /**
   * Lists and gets answered from this cache (when the caller may read); without it every
   * read goes to the apiserver as the caller.
   */
  cache?: ReadCache;
  /** The SubjectAccessReview answers (shared with the event streams); a private one when unset. */
  access?: AccessCache;
}

/** The client's address as the per-address limits see it. */
export const clientAddress = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? "unknown";

/**
 * Largest request line plus headers the gateway reads (Node's default is 16 KiB): a long
 * label selector or continue token gets the gateway's 400 naming it, not a bare 431.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

const jsonTypes = ["application/json", "application/merge-patch+json", "application/*+json"];

const defaultAccess = (deps: GatewayDeps) =>
  new AccessCache(deps.kube, { onLookup: (result) => deps.metrics.countAccessLookup(result) });

/**
 * The HTTP server's request handler: the app, with the plain cached reads served before it
 * (fastReads), unless trusted proxies name the client (the app's own routes serve them then).
 */
export function createGateway(deps: GatewayDeps): RequestListener {
  const access = deps.access ?? defaultAccess(deps);
  const app = createApp({ ...deps, access });
  if (!deps.cache || deps.trustProxy !== undefined) return app;
  return fastReads(app, KINDS, {
    ...deps,
    review: access.review,
    reviewNow: (who, q) => access.answerNow(who, q),
    cache: deps.cache,
  });
}

export function createApp(deps: GatewayDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", "simple");
  app.set("trust proxy", deps.trustProxy ?? false);
  const openapi = JSON.stringify(
    openApiDocument(undefined, {
      ...(deps.dataPlane?.maxExecSeconds !== undefined
        ? { maxExecSeconds: deps.dataPlane.maxExecSeconds }
        : {}),
    }),
  );

  app.use((req, res, next) => {
    res.locals.requestId = requestContext(deps, req, res).id;
    next();
  });

  app.get("/healthz", (_req, res) => void res.json(healthBody(undefined)));
  app.get("/readyz", async (_req, res) => {
    const why = await deps.ready?.();
    res.status(why === undefined ? 200 : 503).json(healthBody(why));
  });
  app.get("/openapi.json", (_req, res) => void res.type("application/json").send(openapi));
  if (deps.consoleDir !== undefined) app.use(CONSOLE_PATH, consoleRouter(deps.consoleDir));

  const v1 = express.Router();
  v1.use(async (req, res, next) => {
    const ctx = requestContext(deps, req, res);
    try {
      await admit(deps, req, ctx, clientAddress(req));
    } finally {
      res.locals.identity = ctx.identity;
    }
    if (
      (req.method === "POST" || req.method === "PUT" || req.method === "PATCH") &&
      !UPLOAD_ROUTE.test(req.path)
    ) {
      const hasBody =
        req.get("content-length") !== "0" &&
        (req.get("content-length") !== undefined || req.get("transfer-encoding") !== undefined);
      if (hasBody && !req.is(jsonTypes))
        throw problemOf(
          415,
          `send JSON (application/json, or application/merge-patch+json for PATCH), not ${req.get("content-type") ?? "no content type"}`,
        );
    }
    next();
  });
  const parseJson = express.json({ limit: deps.bodyLimit ?? "1mb", type: jsonTypes, strict: false });
  // An upload's body is the file itself, streamed to the sandbox: never parsed here.
  v1.use((req, res, next) => (UPLOAD_ROUTE.test(req.path) ? next() : parseJson(req, res, next)));
  v1.use((req, _res, next) => {
    if (nestedDeeperThan(req.body, MAX_BODY_DEPTH))
      throw problemOf(
        400,
        `the request body nests deeper than ${MAX_BODY_DEPTH} levels; no agentry object does`,
      );
    next();
  });
  v1.use(["/namespaces/:namespace", "/watch/namespaces/:namespace"], (req, _res, next) => {
    checkPathNames(String(req.params.namespace), undefined);
    next();
  });
  v1.use("/namespaces/:namespace/:plural/:name", (req, _res, next) => {
    checkPathNames(undefined, String(req.params.name));
    next();
  });
  if (deps.watch) v1.get("/watch/namespaces/:namespace/:plural", deps.watch);
  // Who the gateway takes the caller to be (as SelfSubjectReview says it for the apiserver).
  v1.get("/whoami", (_req, res) => {
    const { user, groups } = res.locals.identity as Identity;
    res.json({ user, groups });
  });
  v1.all("/whoami", methodNotAllowed(["GET"]));
  const review = (deps.access ?? defaultAccess(deps)).review;
  const resourceDeps = {
    kube: deps.kube,
    store: deps.store,
    log: deps.log,
    admission: deps.admission ?? DEFAULT_ADMISSION,
    cache: deps.cache,
    review,
    metrics: deps.metrics,
  };
  v1.use(cachedReadRouter(KINDS, resourceDeps));
  if (deps.dataPlane) {
    const dp = {
      ...deps.dataPlane,
      kube: deps.kube,
      store: deps.store,
      log: deps.log,
      review,
    };
    v1.use("/namespaces/:namespace/workspaces", filesRouter(dp), execRouter(dp));
    v1.use("/namespaces/:namespace/agentruntimes", tasksRouter(dp));
    v1.use("/namespaces/:namespace/pipelines", runsDataRouter(dp));
    v1.use("/namespaces/:namespace/sandboxfleets", sandboxesRouter(dp));
  }
  v1.use("/namespaces/:namespace/events", eventsRouter(resourceDeps));
  v1.use("/namespaces/:namespace/permissions", permissionsRouter(resourceDeps));
  v1.use(allNamespacesRouter(KINDS, resourceDeps));
  v1.use("/namespaces/:namespace/pipelines", runsRouter(resourceDeps, { listed: Boolean(deps.dataPlane) }));
  for (const def of KINDS) v1.use(`/namespaces/:namespace/${def.plural}`, resourceRouter(def, resourceDeps));
  app.use("/v1", v1);

  app.use((req, _res, next) =>
    next(problemOf(404, `no route for ${req.method} ${req.path}; see /openapi.json`)),
  );
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const p = toProblem(err);
    if (p.status >= 500 && !(err instanceof Error && err.name === "Problem"))
      deps.log.error("request failed", {
        requestId: res.locals.requestId as string,
        path: req.path,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    if (res.headersSent) return void res.end();
    sendProblem(res, p.init);
  });
  return app;
}
