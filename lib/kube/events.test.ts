// The EventRecorder: a first Event is created, a repeat is counted on the same Event (a
// patch), and every Event written is reported as a write; a failed write is not.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "./client.ts";
import { EventRecorder } from "./events.ts";
import { silentLogger } from "../log.ts";
import { RecordingClient } from "../../test/harness/fakekube.ts";

const agent: KubeObject = {
  apiVersion: "agentry.dev/v1alpha1",
  kind: "AgentRuntime",
  metadata: { name: "coder", namespace: "team", uid: "u1" },
};

/** Waits until `check` holds (the recorder writes in the background). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(check(), "the recorder's writes did not happen");
}

describe("EventRecorder", () => {
  it("creates an Event, patches the count of a repeat, and reports each write", async () => {
    const client = new RecordingClient([]);
    const counted: string[] = [];
    const recorder = new EventRecorder(client, "test", silentLogger(), {
      onWrite: (verb) => counted.push(verb),
      now: () => new Date("2026-01-02T03:04:05Z"),
    });
    recorder.event(agent, "Normal", "Replacing", "the spec changed");
    await until(() => counted.length === 1);
    recorder.event(agent, "Normal", "Replacing", "the spec changed");
    await until(() => counted.length === 2);
    const [created, patched] = client.writes();
    assert.equal(created?.verb, "create");
    assert.equal((created?.body as { count: number; firstTimestamp: string }).count, 1);
    assert.equal((created?.body as { firstTimestamp: string }).firstTimestamp, "2026-01-02T03:04:05.000Z");
    assert.equal(patched?.verb, "patch");
    assert.equal(patched?.name, created?.name);
    assert.equal((patched?.body as { count: number }).count, 2);
    assert.deepEqual(counted, ["create", "patch"]);
  });

  it("does not report a write that failed", async () => {
    const client = new RecordingClient([]);
    client.failNext("create", "Event", new Error("forbidden"));
    const counted: string[] = [];
    const recorder = new EventRecorder(client, "test", silentLogger(), { onWrite: (v) => counted.push(v) });
    recorder.event(agent, "Warning", "NameConflict", "taken");
    await until(() => client.calls.length === 1);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(counted, []);
  });
});
