// One workspace: where it is placed, how its files stand against the object store, suspend
// and resume, a file browser (list, view, upload, download, delete) and a command runner whose
// output streams in (the gateway's exec route as newline-delimited JSON records). Each control
// a caller may not use is disabled, its reason beside it (the gateway's permissions route).
import { ObjectEvents } from "../events.tsx";
import { useEffect, useRef, useState } from "preact/hooks";
import { NDJSON, records, type ExecRecord } from "../../clients/typescript/index.ts";
import { useObject } from "../live.ts";
import { type Can, governed, useCan, Why } from "../permissions.tsx";
import { pagePath } from "../router.ts";
import { api, authFetch, call, describe, enc } from "../session.ts";
import {
  ActionResult,
  Alert,
  ago,
  Conditions,
  Field,
  Fields,
  Health,
  Link,
  PageTitle,
  Table,
  Missing,
  useAction,
} from "../ui.tsx";
import { wsSpec } from "./workspaces.tsx";

interface WsStatus {
  phase?: string;
  sandboxPod?: string;
  endpoint?: string;
  placedAt?: string;
  lastFlushTime?: string;
  bytes?: number;
  sourceCommit?: string;
}

export function WorkspacePage(props: { ns: string; name: string }) {
  const { ns, name } = props;
  const state0 = useObject(ns, "workspaces", name);
  const ws = state0.object;
  const can = useCan(ns, "workspaces", name);
  const [state, run] = useAction(can);
  if (!ws) return <Missing title={`Workspace ${name}`} kind="Workspace" name={name} ns={ns} state={state0} />;
  const maySuspend = can("suspendWorkspace");
  const sp = wsSpec(ws);
  const st = (ws.status ?? {}) as WsStatus;
  const suspend = (suspended: boolean) =>
    run(async () => {
      await call(
        api().PATCH("/v1/namespaces/{namespace}/workspaces/{name}", {
          params: { path: { namespace: ns, name } },
          body: { spec: { suspended } } as never,
        }),
      );
      return suspended
        ? "Suspending: its files are flushed and its slot freed."
        : "Resuming: it is placed again.";
    });
  return (
    <>
      <PageTitle>{`Workspace ${name}`}</PageTitle>
      <Fields
        rows={[
          ["Health", <Health o={ws} />],
          ["Phase", st.phase],
          [
            "Fleet",
            sp.fleetRef?.name && (
              <Link href={pagePath(ns, "fleets", sp.fleetRef.name)}>{sp.fleetRef.name}</Link>
            ),
          ],
          ["Owner", sp.ownerId],
          ["Sandbox", st.sandboxPod],
          ["Placed", ago(st.placedAt)],
          [
            "Source",
            sp.source?.git?.url ? `${sp.source.git.url} @ ${sp.source.git.ref ?? "main"}` : undefined,
          ],
          ["Source commit", st.sourceCommit],
          ["Last flush to the store", st.lastFlushTime ? ago(st.lastFlushTime) : "not yet"],
          ["Size at last flush", st.bytes !== undefined ? `${st.bytes} bytes` : undefined],
        ]}
      />
      {state0.error && <Alert>{state0.error}</Alert>}
      <div class="row">
        <button
          type="button"
          {...governed(maySuspend, "suspend-why", state.busy)}
          onClick={() => void suspend(!sp.suspended)}
        >
          {sp.suspended ? "Resume" : "Suspend"}
        </button>
      </div>
      <Why id="suspend-why" p={maySuspend}>
        You may not suspend or resume this workspace
      </Why>
      <ActionResult state={state} />
      <Files ns={ns} name={name} placed={Boolean(st.sandboxPod) && !sp.suspended} can={can} />
      <Runner ns={ns} name={name} can={can} />
      <Conditions o={ws} />
      <ObjectEvents ns={ns} kind="Workspace" name={name} />
    </>
  );
}

interface Entry {
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  modifiedAt: string;
}

function Files(props: { ns: string; name: string; placed: boolean; can: Can }) {
  const mayRead = props.can("readFiles");
  const mayWrite = props.can("writeFiles");
  const base = `/v1/namespaces/${enc(props.ns)}/workspaces/${enc(props.name)}/files`;
  const [dir, setDir] = useState("");
  const [entries, setEntries] = useState<Entry[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [viewing, setViewing] = useState<{ path: string; text: string } | undefined>();
  const [reloads, setReloads] = useState(0);
  const [state, run] = useAction(props.can);
  const fileInput = useRef<HTMLInputElement>(null);
  const join = (n: string) => (dir ? `${dir}/${n}` : n);

  useEffect(() => {
    if (!props.placed || !mayRead.allowed) return;
    let stopped = false;
    authFetch(`${base}${dir ? `?path=${enc(dir)}` : ""}`)
      .then((r) => r.json() as Promise<{ entries: Entry[] }>)
      .then((l) => {
        if (stopped) return;
        setEntries(l.entries);
        setError(undefined);
      })
      .catch((err: unknown) => !stopped && setError(describe(err)));
    return () => void (stopped = true);
  }, [base, dir, reloads, props.placed, mayRead.allowed]);

  const view = (n: string) =>
    run(async () => {
      const r = await authFetch(`${base}/content?path=${enc(join(n))}`, {
        headers: { range: "bytes=0-262143" },
      });
      setViewing({ path: join(n), text: await r.text() });
    });
  const download = (n: string, kind: "file" | "dir") =>
    run(async () => {
      const url =
        kind === "dir" ? `${base}/archive?path=${enc(join(n))}` : `${base}/content?path=${enc(join(n))}`;
      const blob = await (await authFetch(url)).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = kind === "dir" ? `${n}.tar` : n;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    });
  const remove = (n: string) =>
    run(async () => {
      if (!confirm(`Delete ${join(n)}?`)) return;
      await authFetch(`${base}/content?path=${enc(join(n))}`, { method: "DELETE" });
      setReloads((x) => x + 1);
      return `Deleted ${join(n)}.`;
    });
  const upload = (e: Event) => {
    e.preventDefault();
    const files = [...(fileInput.current?.files ?? [])];
    if (!files.length) return;
    void run(async () => {
      for (const f of files)
        await authFetch(`${base}/content?path=${enc(join(f.name))}`, {
          method: "PUT",
          body: f,
          headers: { "content-type": "application/octet-stream" },
        });
      if (fileInput.current) fileInput.current.value = "";
      setReloads((x) => x + 1);
      return `Uploaded ${files.map((f) => f.name).join(", ")}.`;
    });
  };

  const crumbs = dir ? dir.split("/") : [];
  return (
    <section aria-labelledby="files-h">
      <h2 id="files-h">Files</h2>
      {!props.placed && <p>The workspace is not placed on a sandbox; its files are not reachable now.</p>}
      <Why id="read-files-why" p={mayRead}>
        You may not see this workspace's files
      </Why>
      <Why id="write-files-why" p={mayWrite}>
        You may not upload or delete files here
      </Why>
      {error && <Alert>{error}</Alert>}
      <nav aria-label="Folder" class="crumbs">
        <button type="button" class="link" onClick={() => setDir("")}>
          {props.name}
        </button>
        {crumbs.map((c, i) => (
          <span key={i}>
            {" / "}
            <button type="button" class="link" onClick={() => setDir(crumbs.slice(0, i + 1).join("/"))}>
              {c}
            </button>
          </span>
        ))}
      </nav>
      {entries && mayRead.allowed && (
        <Table
          caption={`Files in /${dir}`}
          rows={[...entries].sort(
            (a, b) => Number(b.type === "dir") - Number(a.type === "dir") || a.name.localeCompare(b.name),
          )}
          rowKey={(e) => e.name}
          empty="This folder is empty."
          columns={[
            [
              "Name",
              (e) =>
                e.type === "dir" ? (
                  <button type="button" class="link" onClick={() => setDir(join(e.name))}>
                    {e.name}/
                  </button>
                ) : (
                  e.name
                ),
            ],
            ["Size", (e) => (e.type === "file" ? `${e.size} B` : "")],
            ["Modified", (e) => ago(e.modifiedAt)],
            [
              "Actions",
              (e) => (
                <span class="actions">
                  {e.type === "file" && (
                    <button type="button" onClick={() => void view(e.name)} aria-label={`View ${e.name}`}>
                      View
                    </button>
                  )}
                  {(e.type === "file" || e.type === "dir") && (
                    <button
                      type="button"
                      onClick={() => void download(e.name, e.type as "file" | "dir")}
                      aria-label={`Download ${e.name}`}
                    >
                      Download
                    </button>
                  )}
                  {e.type !== "dir" && (
                    <button
                      type="button"
                      onClick={() => void remove(e.name)}
                      aria-label={`Delete ${e.name}`}
                      {...governed(mayWrite, "write-files-why")}
                    >
                      Delete
                    </button>
                  )}
                </span>
              ),
            ],
          ]}
        />
      )}
      <form class="row" onSubmit={upload}>
        <Field label={`Upload to /${dir}`}>
          <input
            type="file"
            name="file"
            multiple
            ref={fileInput}
            {...governed(mayWrite, "write-files-why")}
          />
        </Field>
        <button type="submit" {...governed(mayWrite, "write-files-why", state.busy || !props.placed)}>
          Upload
        </button>
      </form>
      <ActionResult state={state} />
      {viewing && (
        <figure class="viewer">
          <figcaption>
            {viewing.path}{" "}
            <button type="button" onClick={() => setViewing(undefined)}>
              Close
            </button>
          </figcaption>
          <pre tabIndex={0}>{viewing.text}</pre>
        </figure>
      )}
    </section>
  );
}

/** Output kept on screen: the last 256 KiB (the sandbox caps what a command may print anyway). */
const MAX_OUTPUT = 256 * 1024;

function Runner(props: { ns: string; name: string; can: Can }) {
  const may = props.can("exec");
  const [command, setCommand] = useState("");
  const [output, setOutput] = useState("");
  const [exit, setExit] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const running = useRef<{ abort: AbortController; execId?: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const start = async (e: Event) => {
    e.preventDefault();
    if (!command.trim() || running.current) return;
    const abort = new AbortController();
    running.current = { abort };
    setBusy(true);
    setOutput("");
    setExit(undefined);
    setError(undefined);
    try {
      const res = await authFetch(`/v1/namespaces/${enc(props.ns)}/workspaces/${enc(props.name)}/exec`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: NDJSON },
        body: JSON.stringify({ command: ["sh", "-c", command] }),
        signal: abort.signal,
      });
      let text = "";
      for await (const r of records<ExecRecord>(res.body)) {
        if (r.type === "started") running.current.execId = r.execId;
        else if (r.type === "stdout" || r.type === "stderr") {
          text = (text + r.data).slice(-MAX_OUTPUT);
          setOutput(text);
        } else if (r.type === "exit")
          setExit(
            r.timedOut
              ? "timed out"
              : r.exitCode !== null
                ? `exit code ${r.exitCode}`
                : `killed by ${r.signal ?? "a signal"}`,
          );
        else if (r.type === "error") setError(r.detail);
      }
    } catch (err) {
      if ((err as { status?: number }).status === 403) props.can.refresh();
      if (!abort.signal.aborted) setError(describe(err));
      else setExit("cancelled");
    } finally {
      running.current = undefined;
      setBusy(false);
    }
  };
  const cancel = () => {
    const r = running.current;
    if (!r) return;
    if (r.execId)
      void authFetch(`/v1/namespaces/${enc(props.ns)}/workspaces/${enc(props.name)}/exec/${enc(r.execId)}`, {
        method: "DELETE",
      }).catch(() => undefined);
    r.abort.abort();
  };
  return (
    <section aria-labelledby="run-h">
      <h2 id="run-h">Run a command</h2>
      <Why id="exec-why" p={may}>
        You may not run commands in this workspace
      </Why>
      <form class="row" onSubmit={(e) => void start(e)}>
        <Field label="Command" hint="run with sh -c in the workspace's folder">
          <input
            name="command"
            class="mono"
            autoComplete="off"
            spellcheck={false}
            value={command}
            onInput={(e) => setCommand((e.target as HTMLInputElement).value)}
          />
        </Field>
        <button type="submit" {...governed(may, "exec-why", busy)}>
          Run
        </button>
        <button type="button" disabled={!busy} onClick={cancel}>
          Cancel
        </button>
      </form>
      {error && <Alert>{error}</Alert>}
      <pre class="output" role="log" aria-label="Command output" tabIndex={0} data-testid="exec-output">
        {output}
      </pre>
      <p role="status" data-testid="exec-exit">
        {busy ? "Running…" : (exit ?? "")}
      </p>
    </section>
  );
}
