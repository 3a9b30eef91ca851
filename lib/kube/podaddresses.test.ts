import assert from "node:assert/strict";
import { mkdtemp, rename, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isLoopbackAddress, PodAddresses, type Resolution } from "./podaddresses.ts";

const pod = (name: string, podIP?: string) => ({
  metadata: { name, namespace: "ns" },
  ...(podIP ? { status: { podIP } } : {}),
});

describe("isLoopbackAddress", () => {
  for (const [address, loopback] of [
    ["127.0.0.1:8080", true],
    ["127.255.3.4:1", true],
    ["127.0.0.1", true],
    ["localhost:80", true],
    ["[::1]:8080", true],
    ["::1", true],
    ["10.244.0.5:8080", false],
    ["10.0.0.1", false],
    ["128.0.0.1:80", false],
    ["[fe80::1]:80", false],
    ["example.com:80", false],
    ["127.0.0.1.evil.example:80", false],
    ["", false],
  ] as const) {
    it(`${address || "(empty)"} → ${loopback}`, () => assert.equal(isLoopbackAddress(address), loopback));
  }

  it("accepts exactly the addresses in 127.0.0.0/8", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), (ip, port) => {
        assert.equal(isLoopbackAddress(`${ip}:${port}`), ip.startsWith("127."));
      }),
    );
  });
});

describe("PodAddresses", () => {
  it("without a map: the pod IP, and nothing for a pod without one", () => {
    const seen: Resolution[] = [];
    const a = new PodAddresses(undefined, (r) => seen.push(r));
    assert.equal(a.mapped, false);
    assert.equal(a.addressOf(pod("p", "10.244.0.7"), 8080), "10.244.0.7:8080");
    assert.equal(a.addressOf(pod("q"), 8080), undefined);
    assert.deepEqual(seen, [
      { pod: "ns/p", via: "pod-ip", address: "10.244.0.7:8080" },
      { pod: "ns/q", via: "none" },
    ]);
  });

  it("with a map: only mapped loopback addresses; pod IPs are never used", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-podaddr-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "map.json");
    await writeFile(file, JSON.stringify({ "ns/a": "127.0.0.1:4001", "ns/evil": "10.1.2.3:80" }));
    const seen: Resolution[] = [];
    const a = new PodAddresses(file, (r) => seen.push(r));
    assert.equal(a.mapped, true);
    assert.equal(a.addressOf(pod("a", "10.244.0.1"), 8080), "127.0.0.1:4001");
    assert.equal(a.addressOf(pod("b", "10.244.0.2"), 8080), undefined, "an unmapped pod is not dialled");
    assert.equal(a.addressOf(pod("evil", "10.244.0.3"), 8080), undefined, "a non-loopback entry is refused");
    // Repeated resolutions are reported once; a changed map is re-read.
    a.addressOf(pod("a", "10.244.0.1"), 8080);
    await writeFile(file, JSON.stringify({ "ns/b": "127.0.0.2:4002" }));
    // A coarse mtime could hide the rewrite: make sure it differs.
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    assert.equal(a.addressOf(pod("b", "10.244.0.2"), 8080), "127.0.0.2:4002");
    assert.equal(a.addressOf(pod("a", "10.244.0.1"), 8080), undefined);
    assert.deepEqual(seen, [
      { pod: "ns/a", via: "map", address: "127.0.0.1:4001" },
      { pod: "ns/b", via: "none" },
      { pod: "ns/evil", via: "none" },
      { pod: "ns/b", via: "map", address: "127.0.0.2:4002" },
      { pod: "ns/a", via: "none" },
    ]);
  });

  it("re-reads a map replaced whole within one tick of the file system's clock", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-podaddr-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "map.json");
    const replace = async (map: Record<string, string>, at: Date) => {
      await writeFile(`${file}.tmp`, JSON.stringify(map));
      await utimes(`${file}.tmp`, at, at);
      await rename(`${file}.tmp`, file);
    };
    const at = new Date(1_700_000_000_000);
    await replace({ "ns/a": "127.0.0.1:4001" }, at);
    const a = new PodAddresses(file);
    assert.equal(a.addressOf(pod("b", "10.244.0.2"), 8080), undefined);
    // Same mtime, same size: only the inode tells the new file from the old.
    await replace({ "ns/b": "127.0.0.1:4002" }, at);
    assert.equal(a.addressOf(pod("b", "10.244.0.2"), 8080), "127.0.0.1:4002");
  });

  it("with a missing or broken map file: nothing resolves", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "agentry-podaddr-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "map.json");
    const a = new PodAddresses(file);
    assert.equal(a.addressOf(pod("a", "10.244.0.1"), 8080), undefined);
    await writeFile(file, "{not json");
    assert.equal(a.addressOf(pod("a", "10.244.0.1"), 8080), undefined);
  });
});
