// The graceful stop of a node:http server (SIGTERM): stop accepting, close keep-alive
// connections as their requests finish, and when the grace period is over let the caller
// cut what still runs, wait two seconds more, then close every connection.
import type { Server } from "node:http";

export async function closeGracefully(
  server: Server,
  graceMs: number,
  onGraceOver: () => void,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections whose request finishes become idle: close them as they do.
  const sweeper = setInterval(() => server.closeIdleConnections(), 50);
  const timeout = (ms: number) =>
    new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());
  if ((await Promise.race([closed, timeout(graceMs)])) === "timeout") {
    onGraceOver();
    await Promise.race([closed, timeout(2000)]);
    server.closeAllConnections();
  }
  clearInterval(sweeper);
}
