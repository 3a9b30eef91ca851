// Live events: SSE streams from a watch, resumable with Last-Event-ID without losing an
// event, heartbeats, and two gateway processes sharing one watch's events through Redis.
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { hashToken } from "../../gateway/auth/tokens.ts";
import { kubectl, serviceUrl, testNamespace, waitFor } from "../harness/cluster.ts";
import { ADMIN, ADMIN_TOKEN, createFleet, startGateway, startGatewayProcess } from "./harness.ts";
import { objectName, openSse } from "./sse.ts";

const workspace = (ns: string, name: string) => `
apiVersion: agentry.dev/v1alpha1
kind: Workspace
metadata: { name: ${name}, namespace: ${ns} }
spec: { fleetRef: { name: fleet } }
`;

async function apply(ns: string, name: string): Promise<void> {
  const r = await kubectl(["apply", "-f", "-"], workspace(ns, name));
  assert.equal(r.code, 0, r.stderr);
}

describe("gateway event streams", () => {
  it("resumes after a disconnect with Last-Event-ID and loses no event", async (t) => {
    const ns = await testNamespace(t);
    const gw = await startGateway(t, { heartbeatMs: 200 });
    const url = `${gw.url}/v1/watch/namespaces/${ns}/workspaces`;
    const first = await openSse(url, ADMIN_TOKEN);
    assert.equal(first.status, 200);
    await apply(ns, "w1");
    const added = await waitFor("ADDED w1", () =>
      first.events().find((e) => e.event === "ADDED" && objectName(e) === "w1"),
    );
    await waitFor("a heartbeat", () => first.frames.some((f) => f.comment === "heartbeat"));
    first.close();

    await apply(ns, "w2");
    assert.equal((await kubectl(["label", "workspace", "w1", "-n", ns, "x=y"])).code, 0);
    assert.equal((await kubectl(["delete", "workspace", "w1", "-n", ns, "--wait=false"])).code, 0);

    const second = await openSse(url, ADMIN_TOKEN, added.id);
    const seen = await waitFor("the three missed events", () => {
      const e = second.events().map((f) => `${f.event} ${objectName(f)}`);
      return e.length >= 3 ? e : undefined;
    });
    assert.deepEqual(seen.slice(0, 3), ["ADDED w2", "MODIFIED w1", "DELETED w1"]);
    const ids = second.events().map((f) => f.id!);
    assert.equal(new Set(ids).size, ids.length, "no event twice");
    second.close();

    const unknown = await openSse(url, ADMIN_TOKEN, "1-1");
    await waitFor("a reset event", () => unknown.events().some((f) => f.event === "reset"));
    unknown.close();
  });

  it("shares one watch's events between two gateway processes through Redis", async (t) => {
    const redisUrl = serviceUrl(t, "redis");
    if (!redisUrl) return;
    const ns = await testNamespace(t);
    await createFleet(ns);
    const dir = await mkdtemp(join(tmpdir(), "agentry-gw-"));
    const tokensFile = join(dir, "tokens.json");
    await writeFile(
      tokensFile,
      JSON.stringify([{ sha256: hashToken(ADMIN_TOKEN), user: ADMIN.user, groups: ADMIN.groups }]),
    );
    const env = { REDIS_URL: redisUrl, AGENTRY_TOKENS_FILE: tokensFile, AGENTRY_TOKEN_REVIEW: "false" };
    const [a, b] = await Promise.all([startGatewayProcess(t, env), startGatewayProcess(t, env)]);
    const path = `/v1/watch/namespaces/${ns}/workspaces`;
    const sa = await openSse(a.url + path, ADMIN_TOKEN);
    const sb = await openSse(b.url + path, ADMIN_TOKEN);
    t.after(() => {
      sa.close();
      sb.close();
    });
    const created = await a.call("POST", `/v1/namespaces/${ns}/workspaces`, {
      body: { metadata: { name: "shared" }, spec: { fleetRef: { name: "fleet" } } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const onA = await waitFor("ADDED on A", () => sa.events().find((e) => e.event === "ADDED"));
    const onB = await waitFor("ADDED on B", () => sb.events().find((e) => e.event === "ADDED"));
    assert.equal(onA.id, onB.id, "the same event (one watch), with the same id on both replicas");
    assert.equal(objectName(onB), "shared");
    await waitFor("no duplicate from a second watch", async () => {
      await apply(ns, "probe");
      const adds = sb.events().filter((e) => e.event === "ADDED");
      return adds.length >= 2 ? adds : undefined;
    });
    assert.equal(sb.events().filter((e) => e.event === "ADDED" && objectName(e) === "shared").length, 1);

    // Resume on the other replica: the id from B means the same position on A.
    sb.close();
    const last = sb.events().at(-1)!.id!;
    await apply(ns, "later");
    const resumed = await openSse(a.url + path, ADMIN_TOKEN, last);
    t.after(() => resumed.close());
    await waitFor("the missed event on A", () => resumed.events().find((e) => objectName(e) === "later"));
    assert.ok(
      !resumed.events().some((e) => objectName(e) === "shared"),
      "nothing before Last-Event-ID again",
    );
  });
});
