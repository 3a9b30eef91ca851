import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readWatchEvents, type WatchEvent } from "./watch.ts";

/** Chunks arriving one by one, as a response body's do. */
async function* arriving(parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of parts) {
    await new Promise((resolve) => setImmediate(resolve));
    yield p;
  }
}

describe("readWatchEvents", () => {
  it("reads one JSON event per line, however the lines are cut into chunks", async () => {
    const seen: WatchEvent[] = [];
    const a = '{"type":"ADDED","object":{"metadata":{"name":"é","resourceVersion":"1"}}}';
    const b = '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"2"}}}';
    const bytes = new TextEncoder().encode(`${a}\n${b}`);
    // Split inside the two-byte "é" and inside the second line; no newline at the end.
    const cut = a.indexOf("é") + 1;
    const parts = [bytes.slice(0, cut), bytes.slice(cut, a.length + 10), bytes.slice(a.length + 10)];
    await readWatchEvents(arriving(parts), (e) => seen.push(e));
    assert.deepEqual(
      seen.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion]),
      [
        ["ADDED", "é", "1"],
        ["BOOKMARK", undefined, "2"],
      ],
    );
    const empty: WatchEvent[] = [];
    const blank = ["\n", ""].map((t) => new TextEncoder().encode(t));
    await readWatchEvents(arriving(blank), (e) => empty.push(e));
    assert.deepEqual(empty, []);
  });
});
