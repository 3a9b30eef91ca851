// A TCP pass-through on loopback that a test can cut or slow down: cut() drops every
// connection and refuses new ones until open(); `delayMs` holds every chunk the caller
// sends that long before passing it on (order kept when it changes), so each request on a
// kept-alive connection is slowed too. Bytes go through untouched (TLS end to end), so a
// client pointed at it (a kubeconfig with the proxy's port, a webhook URL) sees its server
// go away, come back or answer slowly while everyone else still reaches the server directly.
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";

export interface CutProxy {
  port: number;
  cut(): void;
  open(): void;
  /** Connections refused while cut. */
  readonly refused: number;
  /** How long each chunk from the caller waits before it is passed on. */
  delayMs: number;
  close(): Promise<void>;
}

export async function cutProxy(
  t: { after: (fn: () => Promise<void>) => void },
  targetPort: number,
): Promise<CutProxy> {
  const sockets = new Set<Socket>();
  let isCut = false;
  let refused = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = createServer((client) => {
    if (isCut) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    track(client);
    track(upstream);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    upstream.pipe(client);
    let nextAt = 0; // chunks leave in order even when the delay shrinks meanwhile
    client.on("data", (chunk) => {
      if (proxy.delayMs === 0 && nextAt <= Date.now()) {
        upstream.write(chunk);
        return;
      }
      nextAt = Math.max(nextAt, Date.now() + proxy.delayMs);
      setTimeout(() => upstream.destroyed || upstream.write(chunk), nextAt - Date.now());
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  const proxy: CutProxy = {
    port: address.port,
    delayMs: 0,
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
    },
    open() {
      isCut = false;
    },
    get refused() {
      return refused;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close").catch(() => undefined);
    },
  };
  t.after(() => proxy.close());
  return proxy;
}
