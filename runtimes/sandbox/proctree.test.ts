import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { waitFor } from "../../test/harness/process.ts";
import {
  killTree,
  parseStat,
  readProcTable,
  treeMembers,
  type ProcInfo,
  type ProcTable,
} from "./proctree.ts";

describe("parseStat", () => {
  it("reads the fields after a command name with spaces and parentheses", () => {
    const text = "4242 (a) b (c)) S 17 4242 4200 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 123 1 ...";
    assert.deepEqual(parseStat(text), {
      pid: 4242,
      state: "S",
      ppid: 17,
      pgrp: 4242,
      session: 4200,
      start: 987654,
    });
  });

  it("refuses what is not a stat line", () => {
    assert.equal(parseStat(""), undefined);
    assert.equal(parseStat("no parentheses here"), undefined);
  });

  it("reads this process from /proc", () => {
    const me = readProcTable().get(process.pid);
    assert.equal(me?.ppid, process.ppid);
  });
});

describe("treeMembers", () => {
  const p = (pid: number, ppid: number, session = 1, state = "S"): ProcInfo => ({
    pid,
    ppid,
    pgrp: session,
    session,
    state,
    start: pid * 10,
  });
  // 1 init; 100 the runtime; 200 a command's supervisor (session 200) with children 201, 202;
  // 203 the child of 202; 300 left the tree but not the session (ppid 1); 301 left both;
  // 400 another command; 500 an orphan handed to the runtime; 204 a zombie.
  const table: ProcTable = new Map(
    [
      p(1, 0),
      p(100, 1),
      p(200, 100, 200),
      p(201, 200, 200),
      p(202, 200, 200),
      p(203, 202, 203),
      p(204, 200, 200, "Z"),
      p(300, 1, 200),
      p(301, 1, 301),
      p(400, 100, 400),
      p(500, 100, 500),
    ].map((info) => [info.pid, info]),
  );
  const cases: [string, Parameters<typeof treeMembers>[1], number[]][] = [
    ["the descendants of the root, whatever their session", { root: 200 }, [200, 201, 202, 203]],
    ["and the processes still in its session", { root: 200, session: 200 }, [200, 201, 202, 203, 300]],
    [
      "and the runtime's children that no command owns (it is pid 1 in a pod)",
      { root: 200, session: 200, orphansOf: 100, exclude: new Set([200, 400]) },
      [200, 201, 202, 203, 300, 500],
    ],
    ["nothing when the root is gone and nothing else matches", { root: 999 }, []],
  ];
  for (const [name, selector, expected] of cases)
    it(name, () => assert.deepEqual(treeMembers(table, selector).sort(), expected));
});

describe("killTree", () => {
  it("kills a tree whose members left the process group and the session", async () => {
    const child = spawn("sh", ["-c", "setsid sh -c 'sleep 60 & sleep 60' & (sleep 60 &) ; sleep 60"], {
      detached: true,
      stdio: "ignore",
    });
    const members = await waitFor("the tree to start", () => {
      const found = treeMembers(readProcTable(), { root: child.pid!, session: child.pid! });
      return found.length >= 5 ? found : undefined;
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    await killTree({ root: child.pid!, session: child.pid! });
    await exited;
    await waitFor("every member to be gone", () =>
      members.every((pid) => {
        const info = readProcTable().get(pid);
        return info === undefined || info.state === "Z";
      }),
    );
  });
});
