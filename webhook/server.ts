// The webhook's HTTPS server: an Express 5 app on node:https. POST /validate and /mutate take
// AdmissionReviews (JSON, at most 6 MiB: two objects of up to ~1.5 MiB plus the envelope);
// /healthz, /readyz and /metrics are served on the same port. The certificate is swapped
// in place when it changes; close() stops taking connections and lets requests finish.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "../lib/log.ts";
import { requestOf, reviewMutate, reviewValidate, type Outcome, type AdmissionReview } from "./admission.ts";
import type { WebhookMetrics } from "./metrics.ts";
import type { Lookup, Policy } from "../lib/admission/index.ts";
import type { ServingCert } from "./tls.ts";

export const BODY_LIMIT = "6mb";

export interface ServerDeps {
  lookup: Lookup;
  policy: Policy;
  metrics: WebhookMetrics;
  log: Logger;
  /** undefined when ready, else why not. */
  ready: () => string | undefined;
}

export function createApp(deps: ServerDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
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
  app.get("/healthz", (_req, res) => void res.type("text/plain").send("ok"));
  app.get("/readyz", (_req, res) => {
    const problem = deps.ready();
    res
      .status(problem ? 503 : 200)
      .type("text/plain")
      .send(problem ?? "ok");
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
): Promise<RunningServer> {
  const server = createServer({ cert: cert.cert, key: cert.key, minVersion: "TLSv1.2" }, app);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    setCertificate: (c) => server.setSecureContext({ cert: c.cert, key: c.key, minVersion: "TLSv1.2" }),
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
