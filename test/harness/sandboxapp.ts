// The sandbox runtime's HTTP app in this process, for unit tests of its routes: a temp root
// with a workspace store, a small exec pool, a trust directory of the test's own key (its
// tokens open the pod "team/sandbox-0" or any workspace), on a free loopback port.
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenVerifier } from "../../lib/tokens.ts";
import { Backing } from "../../runtimes/sandbox/backing.ts";
import { ExecPool } from "../../runtimes/sandbox/exec.ts";
import { LoadSampler } from "../../runtimes/sandbox/load.ts";
import { SandboxApp, type SandboxAppOptions } from "../../runtimes/sandbox/server.ts";
import { FairSlots } from "../../runtimes/sandbox/slots.ts";
import { WorkspaceStore } from "../../runtimes/sandbox/workspaces.ts";
import { testTrust, type TestTrust } from "./tokens.ts";

const quiet = { debug: () => undefined, info: () => undefined, error: () => undefined };

export interface TestSandbox {
  root: string;
  store: WorkspaceStore;
  trust: TestTrust;
  port: number;
  url(path: string): string;
  stop(): Promise<void>;
}

export async function startSandboxApp(
  limits: Partial<
    Pick<
      SandboxAppOptions,
      "maxExecSeconds" | "maxOutputBytes" | "maxFileBytes" | "maxJsonBytes" | "wakeWaitMs"
    >
  > = {},
): Promise<TestSandbox> {
  const root = await mkdtemp(join(tmpdir(), "agentry-app-"));
  const trust = await testTrust();
  const store = await WorkspaceStore.open(join(root, "ws"), 4);
  const app = new SandboxApp({
    store,
    pool: new ExecPool({
      slots: new FairSlots({ total: 2, perKey: 1, queuePerKey: 1, maxWaitMs: 10_000 }),
      isolation: "session",
      limits: { processes: 100, openFiles: 64, fileBytes: 1 << 20, cpuSeconds: 10 },
    }),
    load: new LoadSampler({ intervalMs: 1000 }),
    log: quiet,
    verifier: new TokenVerifier({ dir: trust.dir }),
    pod: { namespace: "team", name: "sandbox-0" },
    allowLoadOverride: false,
    maxExecSeconds: 5,
    maxOutputBytes: 1000,
    maxFileBytes: 1000,
    // Not durable: workspaces are usable at once, as without a store.
    backing: new Backing({ log: quiet }),
    ...limits,
  });
  const server = createServer(app.handle);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    root,
    store,
    trust,
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await rm(root, { recursive: true, force: true });
      await trust.remove();
    },
  };
}
