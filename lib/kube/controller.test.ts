import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../log.ts";
import { Controller, type ReconcileResult, type Reconciler } from "./controller.ts";
import { Metrics } from "./metrics.ts";

/** A reconciler whose passes answer from a script, and that counts them. */
function scripted(answers: (ReconcileResult | undefined)[], latestPassDecides: boolean) {
  const passes: string[] = [];
  const reconciler: Reconciler = {
    name: "scripted",
    latestPassDecides,
    reconcile: (key) => {
      passes.push(key);
      return Promise.resolve(answers.shift());
    },
  };
  return { reconciler, passes };
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("Controller", () => {
  for (const latestPassDecides of [true, false]) {
    it(`a visit asked by an earlier pass ${latestPassDecides ? "is dropped" : "stays"} when a later pass asks none (latestPassDecides=${latestPassDecides})`, async (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const { reconciler, passes } = scripted(
        [{ requeueAfterMs: 5_000 }, undefined, undefined],
        latestPassDecides,
      );
      const c = new Controller(reconciler, { workers: 1, metrics: new Metrics(false), log: silentLogger() });
      c.start();
      c.enqueue("ns/a");
      await settle();
      c.enqueue("ns/a"); // an event: the second pass asks for no visit
      await settle();
      t.mock.timers.tick(5_000);
      await settle();
      assert.equal(passes.length, latestPassDecides ? 2 : 3);
      await c.stop(0);
    });
  }
});
