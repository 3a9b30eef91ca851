import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError, type KubeClient, type KubeObject } from "./client.ts";
import {
  ANNOTATION_SPEC_HASH,
  ChildWriter,
  EXPECTATION_MS,
  NameConflictError,
  controlledBy,
  controllerRef,
  withSpecHash,
} from "./children.ts";
import { Metrics } from "./metrics.ts";

const owner = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name: "pg", uid: "u-1" },
};
const ref = (uid: string, controller = true) => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  name: "pg",
  uid,
  controller,
});

function service(opts: { owners?: ReturnType<typeof ref>[]; hash?: string; uid?: string } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "postgres",
      namespace: "ns",
      ...(opts.uid ? { uid: opts.uid } : {}),
      ...(opts.owners ? { ownerReferences: opts.owners } : {}),
      ...(opts.hash ? { annotations: { [ANNOTATION_SPEC_HASH]: opts.hash } } : {}),
    },
  };
}

/** The apiserver as far as ChildWriter uses it: objects by name, and what was called. */
class FakeClient {
  live: KubeObject | undefined;
  calls: string[] = [];
  applied: KubeObject[] = [];
  constructor(live?: KubeObject) {
    this.live = live;
  }
  get(): Promise<KubeObject> {
    this.calls.push("get");
    if (!this.live) return Promise.reject(new ApiError(404, "NotFound", "not found"));
    return Promise.resolve(this.live);
  }
  apply(obj: KubeObject): Promise<KubeObject> {
    this.calls.push("apply");
    this.applied.push(obj);
    return Promise.resolve(obj);
  }
  create(obj: KubeObject): Promise<KubeObject> {
    this.calls.push("create");
    if (this.live) return Promise.reject(new ApiError(409, "AlreadyExists", "already exists"));
    return Promise.resolve(obj);
  }
}

const writerFor = (client: FakeClient) =>
  new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test");

const desired = () =>
  withSpecHash({
    ...service(),
    metadata: { ...service().metadata, ownerReferences: [controllerRef(owner)] },
  });

describe("controlledBy", () => {
  const cases: [string, KubeObject, boolean][] = [
    ["no owner references", service(), false],
    ["controller reference with the uid", service({ owners: [ref("u-1")] }), true],
    ["a non-controller reference with the uid", service({ owners: [ref("u-1", false)] }), false],
    ["a controller reference with another uid", service({ owners: [ref("u-2")] }), false],
  ];
  for (const [name, obj, want] of cases) it(name, () => assert.equal(controlledBy(obj, "u-1"), want));
  it("never for an owner without a uid", () =>
    assert.equal(controlledBy(service({ owners: [ref("u-1")] }), undefined), false));
});

describe("ChildWriter.ensure: never takes over an object it did not create", () => {
  const want = desired();
  const hash = want.metadata.annotations![ANNOTATION_SPEC_HASH]!;
  const cases: [string, KubeObject | undefined, KubeObject | undefined, string[] | "conflict"][] = [
    ["nothing there: created", undefined, undefined, ["get", "apply"]],
    ["ours in the cache, unchanged: no call", service({ owners: [ref("u-1")], hash }), undefined, []],
    [
      "ours in the cache, changed: applied",
      service({ owners: [ref("u-1")], hash: "old" }),
      undefined,
      ["apply"],
    ],
    [
      "not in the cache, ours live (cache lag), unchanged",
      undefined,
      service({ owners: [ref("u-1")], hash }),
      ["get"],
    ],
    ["someone else's Service, no owner", undefined, service({ uid: "x" }), "conflict"],
    [
      "someone else's Service, labelled like ours in the cache",
      service({}),
      service({ uid: "x" }),
      "conflict",
    ],
    ["ours only as a non-controller owner", undefined, service({ owners: [ref("u-1", false)] }), "conflict"],
    ["an earlier AgentRuntime's child", undefined, service({ owners: [ref("u-0")] }), "conflict"],
  ];
  for (const [name, observed, live, expect] of cases) {
    it(name, async () => {
      const client = new FakeClient(live);
      const writer = writerFor(client);
      if (expect === "conflict") {
        await assert.rejects(writer.ensure(want, observed), (err: unknown) => {
          assert.ok(err instanceof NameConflictError);
          assert.match(err.message, /^Service postgres already exists and is not managed by AgentRuntime pg/);
          return true;
        });
        assert.deepEqual(client.calls, ["get"], "only read, never written");
      } else {
        await writer.ensure(want, observed);
        assert.deepEqual(client.calls, expect);
      }
    });
  }

  it("updates name the uid of the incarnation it checked", async () => {
    const client = new FakeClient(service({ owners: [ref("u-1")], hash: "old", uid: "live-uid" }));
    assert.equal(await writerFor(client).ensure(desired(), undefined), true);
    assert.equal(client.applied[0]?.metadata.uid, "live-uid");
  });

  it("says when the name is held by an earlier object of the same kind and name", () => {
    const err = new NameConflictError(desired(), service({ owners: [ref("u-0")] }));
    assert.match(err.message, /an earlier AgentRuntime pg that was deleted/);
  });
});

describe("ChildWriter.create", () => {
  it("creates what is not there", async () => {
    assert.equal(await writerFor(new FakeClient()).create(desired()), true);
  });
  it("false when it exists under the same controller", async () => {
    assert.equal(await writerFor(new FakeClient(service({ owners: [ref("u-1")] }))).create(desired()), false);
  });
  it("a NameConflictError when someone else's object holds the name", async () => {
    await assert.rejects(writerFor(new FakeClient(service())).create(desired()), NameConflictError);
  });
});

describe("ChildWriter expectations (kinds it tracks)", () => {
  /** An informer's events, fired by the test. */
  const events = () => {
    const handlers: Record<string, ((o: KubeObject) => void)[]> = { add: [], update: [], delete: [] };
    return {
      on: (e: "add" | "update" | "delete", h: (o: KubeObject) => void) => void handlers[e]!.push(h),
      fire: (e: "add" | "update" | "delete", o: KubeObject) => handlers[e]!.forEach((h) => h(o)),
    };
  };

  it("writes once until the cache shows the write, and believes the cache after the expectation lapses", async () => {
    let now = 0;
    const client = new FakeClient();
    const writer = new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test", () => now);
    const informer = events();
    writer.track({ Service: informer });
    assert.equal(await writer.ensure(desired(), undefined), true);
    // The Service's event has not arrived: the cache still has nothing.
    assert.equal(await writer.ensure(desired(), undefined), false);
    assert.deepEqual(client.calls, ["get", "apply"], "no second apply, not even a read");
    now += EXPECTATION_MS;
    await writer.ensure(desired(), undefined);
    assert.deepEqual(client.calls, ["get", "apply", "get", "apply"], "the cache is believed again");
  });

  it("any event of the object means the cache caught up: a Service deleted since is created again at once", async () => {
    const client = new FakeClient();
    const writer = new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test");
    const informer = events();
    writer.track({ Service: informer });
    await writer.ensure(desired(), undefined);
    informer.fire("add", desired());
    informer.fire("delete", desired());
    await writer.ensure(desired(), undefined);
    assert.deepEqual(client.calls, ["get", "apply", "get", "apply"]);
  });

  it("a status written once until the cache shows it, whatever the lastTransitionTime a later pass gives it", async () => {
    const client = new FakeClient();
    const writer = new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test");
    writer.track({ AgentRuntime: events() });
    const ar = { ...owner, metadata: { ...owner.metadata, namespace: "ns", resourceVersion: "7" } };
    const status = (at: string, reason = "Replacing") => ({
      conditions: [{ type: "Reconciling", status: "True", reason, lastTransitionTime: at }],
    });
    await writer.writeStatus(ar, status("2026-12-02T15:51:08Z"), {});
    // The cache still shows the AgentRuntime as before the write: a pass a second later merges
    // its conditions with that, and the transition it finds is a second later.
    await writer.writeStatus(ar, status("2026-12-02T15:51:09Z"), {});
    assert.equal(client.calls.length, 1, "the same status is not written again");
    await writer.writeStatus(ar, status("2026-12-02T15:51:09Z", "NotReady"), {});
    assert.equal(client.calls.length, 2, "a different one is");
  });

  it("a status written by a pass that read an older version than the cache holds is not written again", async () => {
    const client = new FakeClient();
    const writer = new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test");
    const at = (resourceVersion: string) => ({
      ...owner,
      metadata: { ...owner.metadata, namespace: "ns", resourceVersion },
    });
    // The cache got version 8 (the last status write's event) while a pass ran on version 7.
    writer.track({ AgentRuntime: { ...events(), get: () => at("8") } });
    const ready = { phase: "Ready" };
    await writer.writeStatus(at("7"), ready, { phase: "Starting" });
    // The next pass reads version 8, which does not show the write yet.
    await writer.writeStatus(at("8"), ready, { phase: "Replacing" });
    assert.equal(client.calls.length, 1, "written once");
  });

  it("expects nothing for kinds it does not track", async () => {
    const client = new FakeClient();
    const writer = writerFor(client);
    await writer.ensure(desired(), undefined);
    await writer.ensure(desired(), undefined);
    assert.deepEqual(client.calls, ["get", "apply", "get", "apply"]);
  });
});

describe("ChildWriter with a cache of every object of a kind (no label selector)", () => {
  const whole = () => {
    const client = new FakeClient();
    const writer = new ChildWriter(client as unknown as KubeClient, new Metrics(false), "test");
    writer.track({ Service: { on: () => undefined, everyObject: true } });
    return { client, writer };
  };

  it("a name the cache lacks is free: applied without a read", async () => {
    const { client, writer } = whole();
    assert.equal(await writer.ensure(desired(), undefined), true);
    assert.deepEqual(client.calls, ["apply"]);
  });

  it("a name the cache shows held by someone else is a conflict, without a read or a write", async () => {
    const { client, writer } = whole();
    await assert.rejects(writer.ensure(desired(), service({ uid: "x" })), NameConflictError);
    await assert.rejects(
      writer.ensure(desired(), service({ owners: [ref("u-0")] })),
      /an earlier AgentRuntime pg/,
    );
    assert.deepEqual(client.calls, []);
  });

  it("ours in the cache and unchanged: nothing", async () => {
    const { client, writer } = whole();
    assert.equal(
      await writer.ensure(
        desired(),
        service({ owners: [ref("u-1")], hash: desired().metadata.annotations![ANNOTATION_SPEC_HASH]! }),
      ),
      false,
    );
    assert.deepEqual(client.calls, []);
  });

  it("a create that finds the name taken still reads whose it is", async () => {
    const { client, writer } = whole();
    client.live = service({ uid: "x" });
    await assert.rejects(writer.create(desired()), NameConflictError);
    assert.deepEqual(client.calls, ["create", "get"]);
  });
});
