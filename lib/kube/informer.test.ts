import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { KubeClient, type KubeObject } from "./client.ts";
import { Informer } from "./informer.ts";
import { KubeConfig } from "./kubeconfig.ts";
import { silentLogger } from "../log.ts";

/** An apiserver of one Pod collection: paged lists, watches, and a way to expire them. */
class FakeApiserver {
  readonly objects = new Map<string, KubeObject>();
  rv = 10;
  /** Watches asked to start before this resourceVersion get 410 Gone. */
  oldest = 0;
  readonly lists: URLSearchParams[] = [];
  readonly watches: URLSearchParams[] = [];
  /** The Accept header, label selector and arrival time of each request. */
  readonly requests: { watch: boolean; accept: string | undefined; selector: string | null; at: number }[] =
    [];
  /** Watches end at once, with nothing in them (an apiserver going away). */
  endAtOnce = false;
  private readonly open = new Set<ServerResponse>();
  readonly server = createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    const q = url.searchParams;
    this.requests.push({
      watch: q.get("watch") === "true",
      accept: req.headers.accept,
      selector: q.get("labelSelector"),
      at: Date.now(),
    });
    if (q.get("watch") === "true") {
      this.watches.push(q);
      res.writeHead(200, { "content-type": "application/json" });
      if (this.endAtOnce) {
        res.end();
        return;
      }
      if (Number(q.get("resourceVersion")) < this.oldest) {
        res.end(
          `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } })}\n`,
        );
        return;
      }
      this.open.add(res);
      res.on("close", () => this.open.delete(res));
      return;
    }
    this.lists.push(q);
    const all = [...this.objects.values()].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
    const from = Number(q.get("continue") || 0);
    const limit = Number(q.get("limit") || all.length);
    const page = all.slice(from, from + limit);
    const more = from + limit < all.length;
    // As the apiserver does: a PartialObjectMetadataList holds metadata, and none when empty.
    const metadataOnly = req.headers.accept?.includes("PartialObjectMetadataList");
    const items = metadataOnly
      ? page.map((o) => ({
          apiVersion: "meta.k8s.io/v1",
          kind: "PartialObjectMetadata",
          metadata: o.metadata,
        }))
      : page;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        metadata: { resourceVersion: String(this.rv), ...(more ? { continue: String(from + limit) } : {}) },
        ...(metadataOnly && items.length === 0 ? {} : { items }),
      }),
    );
  });

  pod(name: string, extra: Record<string, unknown> = {}): KubeObject {
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "ns",
        resourceVersion: String(++this.rv),
        managedFields: [{ manager: "x" }] as never,
      },
      spec: { containers: [{ name: "c", image: "big" }] },
      ...extra,
    };
  }

  /** Changes the collection and tells the open watches. */
  put(obj: KubeObject, type: "ADDED" | "MODIFIED" | "DELETED"): void {
    if (type === "DELETED") this.objects.delete(obj.metadata.name!);
    else this.objects.set(obj.metadata.name!, obj);
    for (const res of this.open) res.write(`${JSON.stringify({ type, object: obj })}\n`);
  }

  /** Ends every watch; with `expire`, the next ones from before now get 410 Gone. */
  endWatches(expire = false): void {
    if (expire) this.oldest = this.rv + 1;
    for (const res of this.open) res.end();
  }
}

let api: FakeApiserver;
let client: KubeClient;
before(async () => {
  api = new FakeApiserver();
  api.server.listen(0, "127.0.0.1");
  await once(api.server, "listening");
  const port = (api.server.address() as AddressInfo).port;
  client = new KubeClient(
    new KubeConfig({ server: `http://127.0.0.1:${port}`, tls: { rejectUnauthorized: true } }),
  );
});
after(() => {
  api.server.closeAllConnections();
  api.server.close();
});

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), `timed out waiting for ${what}`);
}

describe("Informer", () => {
  it("lists in pages, projects what it caches, then follows the watch; a 410 relists and reports the differences", async () => {
    for (const n of ["a", "b", "c", "d", "e"]) api.objects.set(n, api.pod(n));
    const events: string[] = [];
    const informer = new Informer<KubeObject>(
      client,
      {
        apiVersion: "v1",
        kind: "Pod",
        namespace: "ns",
        labelSelector: "app=x",
        pageSize: 2,
        transform: (o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata }),
      },
      silentLogger(),
    );
    informer.on("add", (o) => events.push(`add ${o.metadata.name}`));
    informer.on("update", (o, old) =>
      events.push(
        `update ${o.metadata.name} ${old?.metadata.resourceVersion}->${o.metadata.resourceVersion}`,
      ),
    );
    informer.on("delete", (o) => events.push(`delete ${o.metadata.name}`));
    await informer.start();
    await informer.waitForSync();
    try {
      assert.deepEqual(
        api.lists.map((q) => [q.get("limit"), q.get("continue"), q.get("labelSelector")]),
        [
          ["2", null, "app=x"],
          ["2", "2", "app=x"],
          ["2", "4", "app=x"],
        ],
      );
      assert.equal(informer.list().length, 5);
      const a = informer.get("ns", "a")!;
      assert.equal(a.metadata.managedFields, undefined, "managedFields dropped");
      assert.equal(a["spec"], undefined, "the transform's projection is what is cached");
      await until("a watch", () => api.watches.length === 1);
      assert.equal(api.watches[0]!.get("resourceVersion"), "15");
      assert.equal(api.watches[0]!.get("allowWatchBookmarks"), "true");

      api.put(api.pod("f"), "ADDED");
      api.put(api.pod("a"), "MODIFIED");
      api.put(informer.get("ns", "b")!, "DELETED");
      await until("the watch's events", () => events.length === 8);
      assert.deepEqual(events.slice(5), ["add f", "update a 11->17", "delete b"]);

      // While no watch runs, c changes and d goes; the watch then expires (410 Gone).
      events.length = 0;
      api.endWatches(true);
      api.objects.set("c", api.pod("c"));
      api.objects.delete("d");
      await until("the relist", () => events.length === 2);
      assert.deepEqual(events.sort(), ["delete d", "update c 13->18"]);
      assert.deepEqual(
        informer
          .list("ns")
          .map((o) => o.metadata.name)
          .sort(),
        ["a", "c", "e", "f"],
      );
      assert.deepEqual(informer.list("other"), []);
    } finally {
      await informer.stop();
    }
  });

  it("asks for metadata only when told; reports its progress; backs off a watch that ends at once", async () => {
    api.objects.clear();
    api.oldest = 0;
    api.objects.set("m", api.pod("m"));
    // This informer's requests (the last test's informer may still have one on its way).
    const mine = () => api.requests.filter((r) => r.selector === "app=meta");
    const watches = () => mine().filter((r) => r.watch);
    const informer = new Informer<KubeObject>(
      client,
      { apiVersion: "v1", kind: "Pod", namespace: "ns", labelSelector: "app=meta", metadataOnly: true },
      silentLogger(),
    );
    const progress: string[] = [];
    informer.onProgress((rv, listed) => progress.push(`${rv}${listed ? " listed" : ""}`));
    await informer.start();
    try {
      await until("a watch", () => watches().length === 1);
      assert.equal(informer.get("ns", "m")?.kind, "Pod", "cached as the kind it stands for");
      assert.deepEqual(
        mine().map((r) => [r.watch, r.accept]),
        [
          [false, "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"],
          [true, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"],
        ],
      );
      const listedAt = String(api.rv);
      api.put(api.pod("n"), "ADDED");
      await until("the event's progress", () => progress.length === 2);
      assert.deepEqual(progress, [`${listedAt} listed`, String(api.rv)]);

      api.endAtOnce = true;
      api.endWatches();
      await until("two watches that ended at once", () => watches().length === 4);
      const [third, fourth] = watches().slice(2);
      assert.ok(
        fourth!.at - third!.at >= 400,
        `a watch ${fourth!.at - third!.at} ms after one that ended at once`,
      );
    } finally {
      api.endAtOnce = false;
      await informer.stop();
    }
  });
  it("syncs on an empty metadata list (the apiserver sends it without items)", async () => {
    api.objects.clear();
    const informer = new Informer<KubeObject>(
      client,
      { apiVersion: "v1", kind: "Service", namespace: "ns", labelSelector: "app=empty", metadataOnly: true },
      silentLogger(),
    );
    await informer.start();
    try {
      await informer.waitForSync();
      assert.deepEqual(informer.list(), []);
      assert.equal(informer.everyObject, false, "a label selector filters the cache");
    } finally {
      await informer.stop();
    }
  });
});
