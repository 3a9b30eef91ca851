import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { importsOf, lastJsonLineOf } from "../../test/harness/freshnode.ts";
import { Agent, createServer, request } from "./nodehttp.ts";

/** Whether importing `modules` (ES modules, in a fresh Node) loads undici. */
const loadsUndici = (modules: string[]): boolean =>
  lastJsonLineOf<boolean>(
    `${importsOf(modules)} console.log(process.moduleLoadList.some((m) => m.includes("undici")));`,
  );

describe("node:http without undici", () => {
  it("an ES module import of node:http loads undici, which is why this module exists", () => {
    assert.equal(loadsUndici(["node:http"]), true);
  });

  it("the kube client, health and broker servers and the runtimes' request paths do not", () => {
    assert.equal(
      loadsUndici([
        "./lib/http/nodehttp.ts",
        "./lib/kube/client.ts",
        "./lib/http/health.ts",
        "./operator/broker/server.ts",
        "./runtimes/sandbox/brokered.ts",
      ]),
      false,
    );
  });

  it("serves and sends requests", async () => {
    const server = createServer((_req, res) => res.end("pong")).listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as { port: number };
    const agent = new Agent({ keepAlive: false });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        request({ host: "127.0.0.1", port, path: "/", agent }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => resolve(text));
        })
          .on("error", reject)
          .end();
      });
      assert.equal(body, "pong");
    } finally {
      agent.destroy();
      server.close();
    }
  });
});
