// The exec confinement of the data-plane security issue inside the real sandbox container,
// run as a fleet's Pod runs it (uid 65532, read-only root, all capabilities dropped, no new
// privileges, the runtime as process 1): commands that try to outlive their timeout (setsid,
// double forks, killing their supervisor), a fork bomb, a CPU burner and a disk filler are
// stopped at their limits while another workspace keeps being served. The limits come from
// the runtime's own settings (AGENTRY_SANDBOX_EXEC_MAX_*), as a fleet's template env sets them.
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { containersOr } from "../harness/containers.ts";
import { waitFor } from "../harness/process.ts";
import { start } from "./lib.ts";
import { sandboxApi, sandboxPodOptions } from "./sandbox.ts";

const FILE_LIMIT = 8 * 1024 * 1024;

describe("hostile commands in the sandbox container", () => {
  it("cannot outlive their timeout or their limits; the other workspace is served meanwhile", async (t) => {
    if (!containersOr(t)) return;
    const { pod, options, trust, base, volumes } = await sandboxPodOptions(t, {
      AGENTRY_SANDBOX_EXEC_MAX_PROCESSES: "64",
      AGENTRY_SANDBOX_EXEC_MAX_CPU_SECONDS: "3",
      AGENTRY_SANDBOX_EXEC_MAX_FILE_BYTES: String(FILE_LIMIT),
    });
    const c = await start(t, options);
    await c.waitHttpOk(`${base}/readyz`);
    const sb = sandboxApi(base, await trust.bearer(`pod:${pod.metadata!.namespace!}/${pod.metadata!.name!}`));
    for (const id of ["one", "two", "watch"])
      assert.equal((await sb.call("PUT", `/workspaces/${id}`, "{}")).status, 201);
    const beat = (marker: string) => join(volumes, "workspaces", "one", `beat-${marker}`);
    const size = (path: string) => {
      try {
        return statSync(path).size;
      } catch {
        return 0;
      }
    };
    /** Waits until a file has stopped growing for a second (its writers are gone). */
    const stopsGrowing = async (path: string) => {
      let last = size(path);
      await waitFor(
        `${path} to stop growing`,
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const now = size(path);
          const still = now === last;
          last = now;
          return still;
        },
        { timeoutMs: 20_000 },
      );
    };
    /**
     * Live processes of the container (its PID namespace), counted from a workspace. Zombies
     * do not count: they run nothing (see the note on reaping in README's Exec section).
     */
    const processes = async () => {
      const r = await sb.exec("watch", [
        "sh",
        "-c",
        "n=0; for p in /proc/[0-9]*; do grep -qs '^State:.*Z' $p/status || n=$((n+1)); done; echo $n",
      ]);
      return Number(r.stdout.trim());
    };
    const idle = await processes();
    /** Every process of the container with its state, parent and command line (for a failure message). */
    const listing = async () =>
      (
        await sb.exec("watch", [
          "sh",
          "-c",
          "for p in /proc/[0-9]*; do echo \"$(basename $p) $(awk '/^State|^PPid/{printf $2\" \"}' $p/status) $(tr '\\0' ' ' < $p/cmdline)\"; done",
        ])
      ).stdout;
    /** Waits until the container is back to its idle processes; else fails with what is left. */
    const backToIdle = (what: string) =>
      waitFor(what, async () => (await processes()) <= idle).catch(async (err: Error) => {
        throw new Error(`${err.message}; idle ${idle}, now:\n${await listing()}`);
      });

    // setsid, a double fork and a plain background child: all gone at the timeout.
    const marker = `m${Date.now()}`;
    const escapist = [
      `setsid sh -c 'while :; do echo beat >> beat-${marker}; sleep 0.1; done' &`,
      `(setsid sh -c 'sleep 1000; : ${marker}' &)`,
      `(sh -c 'sleep 1000; : ${marker}' &)`,
      "echo started",
      "sleep 1000",
    ].join("\n");
    const r = await sb.exec("one", ["sh", "-c", escapist], 3);
    assert.deepEqual([r.timedOut, r.stdout], [true, "started\n"]);
    await stopsGrowing(beat(marker));
    await backToIdle("the escapees gone");

    // Killing its supervisor first: the runtime, process 1 of the container, adopts and kills.
    const orphan = `o${Date.now()}`;
    await sb.exec(
      "one",
      [
        "sh",
        "-c",
        `setsid sh -c 'while :; do echo beat >> beat-${orphan}; sleep 0.1; done' &\nsleep 0.3\nkill -9 $PPID\nsleep 1000`,
      ],
      5,
    );
    await stopsGrowing(beat(orphan));
    await backToIdle("the orphans gone");

    // A fork bomb stays under its process limit while the other workspace answers.
    // Its first process becomes a sleep (see test/chaos/hostile-exec.test.ts): it runs to its deadline.
    const bomb = sb.exec(
      "two",
      ["bash", "-c", "b() { while :; do b & sleep 0.05; done; }; b & exec sleep 600"],
      8,
    );
    await waitFor("the bomb to fork", async () => (await processes()) > idle + 10);
    for (let i = 0; i < 3; i++) {
      const ok = await sb.exec("one", ["echo", `still here ${i}`]);
      assert.equal(ok.stdout, `still here ${i}\n`);
    }
    assert.ok((await processes()) <= idle + 64 + 4, "the bomb stays near its limit (64)");
    assert.equal((await bomb).timedOut, true);
    await backToIdle("the bomb gone");

    // A CPU burner stops at its CPU time limit; a disk filler at its file size limit.
    const burner = await sb.exec("one", ["sh", "-c", "while :; do :; done"], 60);
    assert.equal(burner.timedOut, false);
    assert.ok(["SIGXCPU", "SIGKILL"].includes(burner.signal ?? ""), JSON.stringify(burner));
    const filler = await sb.exec("one", ["sh", "-c", "head -c 100000000 /dev/zero > big"]);
    assert.notEqual(filler.exitCode, 0, JSON.stringify(filler));
    assert.equal(size(join(volumes, "workspaces", "one", "big")), FILE_LIMIT);
    assert.equal((await sb.exec("two", ["echo", "fine"])).stdout, "fine\n");
    assert.equal((await c.state()).running, true, "the runtime survived all of it");
  });
});
