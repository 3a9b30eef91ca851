// A TCP proxy on loopback that holds every chunk the caller sends for `delayMs` before
// passing it on, bytes untouched (TLS goes through end to end), so each request on a
// kept-alive connection is slowed too: a slow server as the caller sees it. The delay can
// be changed while it runs; order is kept across changes.
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";

export interface DelayProxy {
  port: number;
  delayMs: number;
  close(): Promise<void>;
}

export async function delayProxy(
  t: { after: (fn: () => Promise<void>) => void },
  targetPort: number,
): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    track(client);
    track(upstream);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    upstream.pipe(client);
    let nextAt = 0; // chunks leave in order even when the delay shrinks meanwhile
    client.on("data", (chunk) => {
      nextAt = Math.max(nextAt, Date.now() + proxy.delayMs);
      setTimeout(() => upstream.destroyed || upstream.write(chunk), nextAt - Date.now());
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  const proxy: DelayProxy = {
    port: address.port,
    delayMs: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close").catch(() => undefined);
    },
  };
  t.after(() => proxy.close());
  return proxy;
}
