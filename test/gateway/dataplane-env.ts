// The data plane as the tests run it: a test namespace, real sandbox and agent runtime
// processes behind kwok's pods on loopback (PodBackends), the gateway's key ring with its
// public keys published (as gateway/main.ts keeps them), the real operator placing workspaces
// and running agents, and the gateway in process reaching the pods through the address map.
import { KubeClient } from "../../lib/kube/client.ts";
import { PodAddresses } from "../../lib/kube/podaddresses.ts";
import { publishPublicKeys, SecretKeyRing } from "../../lib/keyring.ts";
import { silentLogger } from "../../lib/log.ts";
import type { Identity } from "../../gateway/auth/identity.ts";
import { kubeConfig, testNamespace, waitFor } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { PodBackends } from "../harness/pods.ts";
import { startGateway, type Gateway } from "./harness.ts";

type Ctx = { name: string; after: (fn: () => Promise<void>) => void };

export interface DataPlane {
  ns: string;
  gw: Gateway;
  pods: PodBackends;
  ring: SecretKeyRing;
  /** Starts one more gateway replica beside `gw`, sharing nothing with it but the cluster. */
  replica: () => Promise<Gateway>;
}

export async function startDataPlane(
  ctx: Ctx,
  o: {
    tokens?: Record<string, Identity>;
    maxUploadBytes?: number;
    maxExecSeconds?: number;
    wakeWaitMs?: number;
    consoleDir?: string;
  } = {},
): Promise<DataPlane> {
  const ns = await testNamespace(ctx);
  const pods = await PodBackends.start({ namespaces: [ns] });
  ctx.after(() => pods.stop());
  const kube = new KubeClient(kubeConfig());
  const ring = new SecretKeyRing(kube, {
    namespace: ns,
    name: "agentry-gateway-signing-key",
    issuer: "agentry-gateway",
    policy: { rotateEveryMs: 86_400_000, graceMs: 3_600_000 },
    log: silentLogger(),
  });
  await ring.sync();
  await publishPublicKeys(
    kube,
    { namespace: ns, name: "agentry-gateway-public-keys", owner: "agentry-gateway" },
    ring.publicKeys(),
  );
  await startOperator(ctx, { namespaces: [ns], podAddressMap: pods.mapFile });
  const replica = () =>
    startGateway(ctx, {
      ...(o.tokens ? { tokens: o.tokens } : {}),
      ...(o.consoleDir ? { consoleDir: o.consoleDir } : {}),
      dataPlane: {
        addresses: new PodAddresses(pods.mapFile),
        signer: () => ring.signer(),
        ...(o.maxUploadBytes !== undefined ? { maxUploadBytes: o.maxUploadBytes } : {}),
        maxExecSeconds: o.maxExecSeconds ?? 60,
        ...(o.wakeWaitMs !== undefined ? { wakeWaitMs: o.wakeWaitMs } : {}),
      },
    });
  return { ns, gw: await replica(), pods, ring, replica };
}

/** Waits until a route of the object answers 200 through the gateway (placed or Ready, key trusted). */
export async function answering(gw: Gateway, ns: string, what: string, route: string): Promise<void> {
  await waitFor(
    `${what} to answer through the gateway`,
    async () => (await gw.call("GET", `/v1/namespaces/${ns}/${route}`)).status === 200,
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}
