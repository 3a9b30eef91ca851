// A program's own HTTP endpoints beside its work (the operator's): /healthz (the process
// works), /readyz (e.g. caches synced), /metrics (Prometheus); or /metrics alone, apart from
// a program's public port (the gateway's, the runtimes'). Plain node:http: nothing else is
// served here.
import type { Server, ServerResponse } from "node:http";
import { createServer } from "./nodehttp.ts";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/**
 * The body of every agentry /healthz and /readyz answer: `{"status":"ok"}` with 200, or
 * `{"status":"unavailable","reason":"..."}` with 503.
 */
export function healthBody(
  problem: string | undefined,
): { status: "ok" } | { status: "unavailable"; reason: string } {
  return problem === undefined ? { status: "ok" } : { status: "unavailable", reason: problem };
}

export interface HealthChecks {
  healthy(): string | undefined;
  ready(): string | undefined;
}

export async function startHealthServer(
  addr: { host: string; port: number },
  metrics: { registry: Registry },
  checks: HealthChecks,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const answer = (problem: string | undefined) => {
      res.writeHead(problem === undefined ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify(healthBody(problem)));
    };
    if (path === "/healthz" || path === "/livez") return answer(checks.healthy());
    if (path === "/readyz") return answer(checks.ready());
    if (path === "/metrics") return sendMetrics(metrics.registry, res);
    notFound(res);
  });
  return listen(server, addr);
}

/**
 * /metrics alone on an address of its own (the gateway's and the runtimes'), so the port
 * their clients reach never shows it: everything else answers 404.
 */
export async function startMetricsServer(
  addr: { host: string; port: number },
  registry: Registry,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if ((req.url ?? "/").split("?")[0] === "/metrics" && (req.method === "GET" || req.method === "HEAD"))
      return sendMetrics(registry, res);
    notFound(res);
  });
  return listen(server, addr);
}

function sendMetrics(registry: Registry, res: ServerResponse): void {
  registry
    .metrics()
    .then((text) => {
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(text);
    })
    .catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
}

async function listen(
  server: Server,
  addr: { host: string; port: number },
): Promise<{ server: Server; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
