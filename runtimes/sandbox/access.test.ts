import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { accessFor } from "./access.ts";

const pod = { namespace: "team", name: "fleet-sandbox-abc" };
const P = "pod:team/fleet-sandbox-abc";

describe("sandbox route access", () => {
  const cases: [string, string, string | [string[], string]][] = [
    ["GET", "/healthz", "open"],
    ["GET", "/readyz", "open"],
    ["GET", "/status", [[P], "status"]],
    ["GET", "/workspaces", [[P], "status"]],
    ["POST", "/drain", [[P], "drain"]],
    ["POST", "/undrain", [[P], "drain"]],
    ["PUT", "/debug/load", [[P], "drain"]],
    ["PUT", "/workspaces/team.a", [[P], "placement"]],
    ["DELETE", "/workspaces/team.a", [[P], "placement"]],
    ["GET", "/workspaces/team.a", [["workspace:team.a", P], "files"]],
    ["POST", "/workspaces/team.a/exec", [["workspace:team.a", P], "exec"]],
    ["GET", "/workspaces/team.a/files/x/y.txt", [["workspace:team.a", P], "files"]],
    ["PUT", "/workspaces/team%2Ea/files/y", [["workspace:team.a", P], "files"]],
    ["GET", "/nope", [[P], "status"]],
    ["GET", "/workspaces/%E0%A4%A/files/x", [[P], "files"]],
  ];
  for (const [method, path, want] of cases)
    it(`${method} ${path}`, () => {
      const got = accessFor(method, path, pod);
      assert.deepEqual(got, want === "open" ? "open" : { audiences: want[0], scope: want[1] });
    });

  it("without a pod identity only workspace tokens open anything", () => {
    assert.deepEqual(accessFor("GET", "/status", undefined), { audiences: [], scope: "status" });
    assert.deepEqual(accessFor("POST", "/workspaces/w/exec", undefined), {
      audiences: ["workspace:w"],
      scope: "exec",
    });
  });
});
