// Issue 12, item 5: hostile input across the apiserver (CRD schema, CEL, our admission
// webhook; over REST and through kubectl), the REST gateway and the sandbox runtime's
// file and exec API. Every case must be refused with a 4xx and a message; no 5xx; the
// operator, webhook, gateway and sandbox processes must still be alive afterwards and
// nothing may have been stored.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { request } from "node:http";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import type { ApiError } from "../../lib/kube/client.ts";
import { kubectl, testNamespace } from "../harness/cluster.ts";
import { startOperator } from "../harness/operator.ts";
import { startWebhook, webhookId } from "../harness/webhook.ts";
import { ADMIN } from "../gateway/harness.ts";
import { bulkClient, inParallel } from "./agents.ts";
import { hostileCrs, type HostileCr } from "./hostile-crs.ts";
import { hostileGatewayRequests, hostileSandboxRequests, type HostileRequest } from "./hostile-requests.ts";
import { alive, gatewayWithTokens, startSandbox } from "./processes.ts";

const PLURAL = {
  AgentRuntime: "agentruntimes",
  Pipeline: "pipelines",
  SandboxFleet: "sandboxfleets",
  Workspace: "workspaces",
} as const;
const TOKEN = "chaos-admin-token";

interface Outcome {
  name: string;
  status: number;
  message: string;
}

/** Lines for every outcome that is not a 4xx with a message. */
const offenders = (outcomes: Outcome[]) =>
  outcomes
    .filter((o) => o.status < 400 || o.status >= 500 || o.message.trim().length < 8)
    .map((o) => `${o.name}: ${o.status} ${o.message.slice(0, 200)}`);

/** Sends the request with its path exactly as written (no client-side normalisation of ".."). */
function send(base: string, token: string, r: HostileRequest, ns: string): Promise<Outcome> {
  const headers: Record<string, string> = { ...r.headers };
  const t = r.token === undefined ? token : r.token;
  if (t !== null && !headers.authorization) headers.authorization = `Bearer ${t}`;
  if (r.body !== undefined) headers["content-length"] = String(Buffer.byteLength(r.body));
  return new Promise((resolve) => {
    // Host and path apart: a URL string would be parsed, and "%2e%2e" resolved away.
    const { hostname, port } = new URL(base);
    const req = request(
      { hostname, port, path: r.path.replaceAll("{ns}", ns), method: r.method, headers, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let message = text;
          try {
            message = (JSON.parse(text) as { detail?: string }).detail ?? text;
          } catch {
            // not JSON: keep the text
          }
          resolve({ name: r.name, status: res.statusCode ?? 0, message });
        });
      },
    );
    // A refused upload may close the connection before the client finished sending.
    req.on("error", (err) => resolve({ name: r.name, status: 0, message: `transport: ${err.message}` }));
    req.end(r.body);
  });
}

describe("hostile input", () => {
  it("refuses every malformed or hostile input with a 4xx and nothing crashes", async (t) => {
    const ident = webhookId();
    const ns = await testNamespace(t, ident.labels);
    const hook = await startWebhook(t, ident, { namespace: ns });
    const operator = await startOperator(t, { namespaces: [ns], leaderElect: false });
    const gateway = await gatewayWithTokens(t, { [TOKEN]: { user: ADMIN.user, groups: ADMIN.groups } });
    const sandbox = await startSandbox(t, ["--max-file-bytes=1048576"]);
    // A token for the sandbox's pod allowing everything: what is refused is refused for the input.
    const sandboxToken = await sandbox.trust.token(sandbox.podAudience, undefined, { ttlSeconds: 900 });
    const client = bulkClient();
    // The webhook is registered: a Workspace of a missing fleet is denied (by it alone).
    const probe = () =>
      kubectl(
        ["create", "--dry-run=server", "-f", "-"],
        JSON.stringify({
          apiVersion: "agentry.dev/v1alpha1",
          kind: "Workspace",
          metadata: { name: "probe", namespace: ns },
          spec: { fleetRef: { name: "missing" } },
        }),
      );
    assert.match((await probe()).stderr, /does not exist/, "the webhook answers for this namespace");

    // 1. The apiserver over REST, as kubectl sends it (strict field validation).
    const crOutcome = async (c: HostileCr): Promise<Outcome> => {
      const body = c.body(ns);
      try {
        await client.request("POST", `/apis/agentry.dev/v1alpha1/namespaces/${ns}/${PLURAL[c.kind]}`, {
          body: typeof body === "string" ? body : JSON.stringify(body),
          query: { fieldValidation: "Strict" },
        });
        return { name: `${c.kind} ${c.name}`, status: 201, message: "created" };
      } catch (err) {
        const e = err as ApiError;
        return { name: `${c.kind} ${c.name}`, status: e.status, message: e.message };
      }
    };
    const crs: Outcome[] = [];
    await inParallel(hostileCrs, 8, async (c) => crs.push(await crOutcome(c)));

    // 2. The same objects through kubectl (those kubectl can send as a file).
    const viaKubectl: Outcome[] = [];
    const sendable = hostileCrs.filter((c) => {
      const b = c.body(ns);
      return typeof b !== "string" && JSON.stringify(b).length < 200_000;
    });
    await inParallel(sendable, 6, async (c) => {
      const r = await kubectl(["create", "-n", ns, "-f", "-"], JSON.stringify(c.body(ns)));
      const server = /Error from server \((\w+)\)|denied the request|is invalid|BadRequest/.exec(r.stderr);
      const clientSide = /^error: /m.test(r.stderr);
      const status =
        r.code === 0 ? 201 : /InternalError|\(500\)/.test(r.stderr) ? 500 : server || clientSide ? 400 : 0;
      viaKubectl.push({ name: `kubectl ${c.kind} ${c.name}`, status, message: r.stderr || r.stdout });
    });

    // 3. The REST gateway, 4. the sandbox runtime.
    const rest: Outcome[] = [];
    for (const r of hostileGatewayRequests) rest.push(await send(gateway.url, TOKEN, r, ns));
    const created = await fetch(`${sandbox.url}/workspaces/w1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${sandboxToken}` },
    });
    assert.equal(created.status, 201);
    const files: Outcome[] = [];
    for (const r of hostileSandboxRequests) files.push(await send(sandbox.url, sandboxToken, r, ns));

    const total = crs.length + rest.length + files.length;
    t.diagnostic(
      `${total} hostile inputs: ${crs.length} CRs over REST (+${viaKubectl.length} through kubectl), ` +
        `${rest.length} gateway requests, ${files.length} sandbox requests`,
    );
    const statuses = (o: Outcome[]) => [...new Set(o.map((x) => x.status))].sort().join(",");
    t.diagnostic(`statuses: CRs ${statuses(crs)}; gateway ${statuses(rest)}; sandbox ${statuses(files)}`);
    assert.ok(total >= 200, `at least 200 hostile inputs (${total})`);
    assert.deepEqual(
      {
        crs: offenders(crs),
        kubectl: offenders(viaKubectl),
        gateway: offenders(rest),
        sandbox: offenders(files),
      },
      { crs: [], kubectl: [], gateway: [], sandbox: [] },
    );

    // Nothing was stored, nothing escaped the sandbox, and every process is still serving.
    const stored = await kubectl(["get", "agentry", "-n", ns, "-o", "name"]);
    assert.equal(stored.stdout.trim(), "", "no hostile object was stored");
    assert.deepEqual(await readdir(dirname(sandbox.root)), ["workspaces"], "nothing written beside the root");
    const w1 = await fetch(`${sandbox.url}/workspaces/w1`, {
      headers: { authorization: `Bearer ${sandboxToken}` },
    });
    assert.equal(w1.status, 200, "the workspace survived");
    assert.ok(alive(operator.child), "operator alive");
    assert.ok(alive(gateway.child), "gateway alive");
    assert.ok(alive(sandbox.child), "sandbox alive");
    assert.equal((await fetch(`http://127.0.0.1:${operator.port}/healthz`)).status, 200);
    assert.equal((await fetch(`${gateway.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${sandbox.url}/healthz`)).status, 200);
    assert.ok(!hook.logs.some((l) => l.level === "error"), "the webhook logged no error");
    assert.match((await probe()).stderr, /does not exist/, "the webhook still answers");
    for (const p of [sandbox.logs, gateway.logs])
      assert.ok(
        !p.some((l) => /"level":"error"/.test(l)),
        p.filter((l) => /"level":"error"/.test(l)).join("\n"),
      );
  });
});
