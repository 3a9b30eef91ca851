import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nestedDeeperThan } from "./depth.ts";

const arrays = (d: number): unknown => JSON.parse(`${"[".repeat(d)}${"]".repeat(d)}`);
const objects = (d: number): unknown => JSON.parse(`${'{"a":'.repeat(d)}1${"}".repeat(d)}`);

describe("nestedDeeperThan", () => {
  const cases: [string, unknown, number, boolean][] = [
    ["a scalar", 5, 0, false],
    ["null", null, 0, false],
    ["an empty object at limit 1", {}, 1, false],
    ["an empty object at limit 0", {}, 0, true],
    ["3 arrays at limit 3", arrays(3), 3, false],
    ["4 arrays at limit 3", arrays(4), 3, true],
    ["64 objects at limit 64", objects(64), 64, false],
    ["65 objects at limit 64", objects(65), 64, true],
    ["100,000 arrays (no stack overflow)", arrays(100_000), 64, true],
    ["a wide shallow object", { a: [1, 2, { b: "c" }], d: { e: { f: [] } } }, 4, false],
  ];
  for (const [name, value, limit, expected] of cases)
    it(name, () => assert.equal(nestedDeeperThan(value, limit), expected));
});
