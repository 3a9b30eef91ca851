// The webhook's HTTPS server: an Express 5 app on node:https. POST /validate and /mutate take
// AdmissionReviews (JSON, at most 6 MiB: two objects of up to ~1.5 MiB plus the envelope);
// /healthz, /readyz and /metrics are served on the same port. The certificate is swapped
// in place when it changes; close() stops taking connections and lets requests finish.
// With a client CA, reviews are answered only to a caller presenting a certificate it signed
// (the apiserver, configured to present one): anyone else gets 403 and no review at all.
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "../lib/log.ts";
import { requestOf, reviewMutate, reviewValidate, type Outcome, type AdmissionReview } from "./admission.ts";
import type { WebhookMetrics } from "./metrics.ts";
import type { Lookup, Policy } from "../lib/admission/index.ts";
import type { ServingCert } from "./tls.ts";
import { healthBody } from "../lib/http/health.ts";

export const BODY_LIMIT = "6mb";

/** Who may ask for reviews: TLS clients with a certificate from `ca` (and, if given, one of `names`). */
export interface ClientAuth {
  /** PEM of the CA that signs the apiserver's client certificate. */
  ca: string;
  /** Common names or DNS names the certificate must carry; empty: any the CA signed. */
  names: string[];
}

export interface ServerDeps {
  lookup: Lookup;
  policy: Policy;
  metrics: WebhookMetrics;
  log: Logger;
  /** undefined when ready, else why not. */
  ready: () => string | undefined;
  /** Only callers with a client certificate (the apiserver) get reviews; unset: any caller. */
  clientAuth?: ClientAuth;
}

/** Why the TLS client on `socket` is not a caller `auth` accepts, or undefined when it is. */
export function clientRefusal(socket: TLSSocket, auth: ClientAuth): string | undefined {
  if (!socket.authorized) {
    const why = socket.authorizationError ? ` (${String(socket.authorizationError)})` : "";
    return `admission reviews are answered only to a caller with a client certificate from the configured CA${why}`;
  }
  if (auth.names.length === 0) return undefined;
  const cert = socket.getPeerCertificate();
  const dns = (cert.subjectaltname ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4));
  const cn = cert.subject.CN;
  const presented = [...(Array.isArray(cn) ? cn : cn ? [cn] : []), ...dns];
  return presented.some((n) => auth.names.includes(n))
    ? undefined
    : `the client certificate (${presented.join(", ") || "no name"}) is not one the webhook accepts`;
}

export function createApp(deps: ServerDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  if (deps.clientAuth) {
    const auth = deps.clientAuth;
    app.use(["/validate", "/mutate"], (req, res, next) => {
      const why = clientRefusal(req.socket as TLSSocket, auth);
      if (!why) return next();
      deps.metrics.refusedCallers.inc();
      deps.log.warn("refused an admission review from an unverified caller", {
        address: req.socket.remoteAddress,
        why,
      });
      res.status(403).json({ error: why });
    });
  }
  app.use(express.json({ limit: BODY_LIMIT }));

  const admit =
    (endpoint: "validate" | "mutate") =>
    async (req: Request, res: Response): Promise<void> => {
      const end = deps.metrics.reviewSeconds.startTimer({ endpoint });
      let request;
      try {
        request = requestOf(req.body);
      } catch (err) {
        res.status(400).json({ error: (err as Error).message });
        return;
      }
      let result: { review: AdmissionReview; outcome: Outcome };
      if (endpoint === "mutate") result = reviewMutate(request);
      else result = await reviewValidate(request, deps.lookup, deps.policy);
      const { kind, operation, namespace } = request;
      deps.metrics.reviews.inc({ endpoint, kind: kind.kind, operation, result: result.outcome });
      const r = result.review.response;
      const name = request.object?.metadata.name ?? request.oldObject?.metadata.name;
      const fields = { endpoint, kind: kind.kind, operation, namespace, name, allowed: r?.allowed };
      if (result.outcome === "error")
        deps.log.error("admission check failed", { ...fields, message: r?.status?.message });
      else if (!r?.allowed) deps.log.info("admission denied", { ...fields, message: r?.status?.message });
      else deps.log.debug("admission allowed", { ...fields, warnings: r.warnings });
      end();
      res.json(result.review);
    };

  app.post("/validate", admit("validate"));
  app.post("/mutate", admit("mutate"));
  app.get("/healthz", (_req, res) => void res.json(healthBody(undefined)));
  app.get("/readyz", (_req, res) => {
    const problem = deps.ready();
    res.status(problem === undefined ? 200 : 503).json(healthBody(problem));
  });
  app.get("/metrics", async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  app.use(
    (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
      if (status === 500) deps.log.error("request failed", { error: err.message });
      res
        .status(status)
        .json({ error: err.type === "entity.too.large" ? `body larger than ${BODY_LIMIT}` : err.message });
    },
  );
  return app;
}

export interface RunningServer {
  server: Server;
  port: number;
  setCertificate(cert: ServingCert): void;
  close(graceMs: number): Promise<void>;
}

export async function startServer(
  listen: { host: string; port: number },
  cert: ServingCert,
  app: express.Express,
  clientCa?: string,
): Promise<RunningServer> {
  // With a client CA the server asks for a certificate but lets the handshake finish without
  // one: health probes need none, and the app refuses reviews to unverified callers.
  const client = clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: false } : {};
  const server = createServer({ cert: cert.cert, key: cert.key, minVersion: "TLSv1.2", ...client }, app);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    setCertificate: (c) =>
      server.setSecureContext({
        cert: c.cert,
        key: c.key,
        minVersion: "TLSv1.2",
        ...(clientCa ? { ca: clientCa } : {}),
      }),
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
