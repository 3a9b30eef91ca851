// AgentRuntimes: phase and readinessReason of each; an agent's page shows its endpoint,
// restarts and conditions, its recent tasks, and a task box whose answer streams in (for
// callers who may send tasks; others see why not).
import { useEffect, useState } from "preact/hooks";
import { NDJSON, records, type TaskRecord } from "../../clients/typescript/index.ts";
import { ObjectEvents } from "../events.tsx";
import { useObject, usePage, type Obj } from "../live.ts";
import { type Can, governed, type Permission, useCan, Why } from "../permissions.tsx";
import { pagePath } from "../router.ts";
import { authFetch, describe, enc } from "../session.ts";
import { Alert, ago, Conditions, Field, Fields, Health, Link, PageTitle, Table, Missing } from "../ui.tsx";

interface ArStatus {
  phase?: string;
  readinessReason?: string;
  endpoint?: string;
  podName?: string;
  restartCount?: number;
}
const arStatus = (o: Obj) => (o.status ?? {}) as ArStatus;

export function AgentsPage(props: { ns: string }) {
  const agents = usePage(props.ns, "agentruntimes");
  return (
    <>
      <PageTitle>Agents</PageTitle>
      {agents.error && <Alert>{agents.error}</Alert>}
      <Table
        caption={`AgentRuntimes in ${props.ns}`}
        rows={agents.items}
        paging={agents.paging}
        rowKey={(o) => o.metadata.name}
        empty={agents.loaded ? "No agents in this namespace." : "Loading…"}
        columns={[
          [
            "Name",
            (o) => <Link href={pagePath(props.ns, "agents", o.metadata.name)}>{o.metadata.name}</Link>,
          ],
          ["Phase", (o) => arStatus(o).phase ?? "—"],
          ["Health", (o) => <Health o={o} />],
          ["Why", (o) => arStatus(o).readinessReason ?? ""],
          ["Restarts", (o) => arStatus(o).restartCount ?? 0],
        ]}
      />
    </>
  );
}

interface Task {
  id: string;
  status: string;
  startedAt: string;
  input: string;
  output?: string;
}

export function AgentPage(props: { ns: string; name: string }) {
  const { ns, name } = props;
  const agent = useObject(ns, "agentruntimes", name);
  const ar = agent.object;
  const can = useCan(ns, "agentruntimes", name);
  const mayRead = can("readTasks");
  const [tasks, setTasks] = useState<Task[] | undefined>();
  const [tasksNote, setTasksNote] = useState<string | undefined>();
  const [runs, setRuns] = useState(0);
  const base = `/v1/namespaces/${enc(ns)}/agentruntimes/${enc(name)}/tasks`;
  const ready = ar && arStatus(ar).phase === "Ready";
  useEffect(() => {
    if (!ready || !mayRead.allowed) return;
    authFetch(base)
      .then((r) => r.json() as Promise<{ items: Task[] }>)
      .then((l) => setTasks(l.items))
      .catch((err: unknown) => setTasksNote(describe(err)));
  }, [base, ready, runs, mayRead.allowed]);
  if (!ar) return <Missing title={`Agent ${name}`} kind="AgentRuntime" name={name} ns={ns} state={agent} />;
  const st = arStatus(ar);
  return (
    <>
      <PageTitle>{`Agent ${name}`}</PageTitle>
      <Fields
        rows={[
          ["Health", <Health o={ar} />],
          ["Phase", st.phase],
          ["Why", st.readinessReason],
          ["Endpoint", st.endpoint && <code>{st.endpoint}</code>],
          ["Pod", st.podName],
          ["Restarts", st.restartCount ?? 0],
        ]}
      />
      {agent.error && <Alert>{agent.error}</Alert>}
      <TaskBox base={base} onDone={() => setRuns((x) => x + 1)} disabled={!ready} can={can} />
      <section aria-labelledby="tasks-h">
        <h2 id="tasks-h">Recent tasks</h2>
        <Why id="read-tasks-why" p={mayRead}>
          You may not read this agent's tasks
        </Why>
        {tasksNote && <p class="muted">{tasksNote}</p>}
        {tasks && (
          <Table
            caption="Tasks the agent keeps, newest first"
            rows={[...tasks].reverse()}
            rowKey={(t) => t.id}
            columns={[
              ["Started", (t) => ago(t.startedAt)],
              ["Status", (t) => t.status],
              ["Input", (t) => t.input],
              ["Output", (t) => t.output ?? ""],
            ]}
          />
        )}
      </section>
      <Conditions o={ar} />
      <ObjectEvents ns={ns} kind="AgentRuntime" name={name} />
    </>
  );
}

function TaskBox(props: { base: string; onDone: () => void; disabled: boolean; can: Can }) {
  const may: Permission = props.can("sendTask");
  const [input, setInput] = useState("");
  const [answer, setAnswer] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const send = async (e: Event) => {
    e.preventDefault();
    if (!input.trim()) return;
    setBusy(true);
    setAnswer("");
    setError(undefined);
    try {
      const res = await authFetch(props.base, {
        method: "POST",
        headers: { "content-type": "application/json", accept: NDJSON },
        body: JSON.stringify({ input }),
      });
      let text = "";
      for await (const r of records<TaskRecord>(res.body)) {
        if (r.type === "output") setAnswer((text += r.data));
        else if (r.type === "result" && !text) setAnswer((text = r.output));
        else if (r.type === "error") setError(r.detail);
      }
    } catch (err) {
      if ((err as { status?: number }).status === 403) props.can.refresh();
      setError(describe(err));
    } finally {
      setBusy(false);
      props.onDone();
    }
  };
  return (
    <section aria-labelledby="task-h">
      <h2 id="task-h">Send a task</h2>
      {props.disabled && <p>The agent is not Ready; tasks are refused until it is.</p>}
      <Why id="task-why" p={may}>
        You may not send tasks to this agent
      </Why>
      <form class="stack" onSubmit={(e) => void send(e)}>
        <Field label="Task">
          <textarea
            name="input"
            rows={3}
            value={input}
            onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)}
          />
        </Field>
        <button type="submit" {...governed(may, "task-why", busy || props.disabled)}>
          {busy ? "Working…" : "Send"}
        </button>
      </form>
      {error && <Alert>{error}</Alert>}
      <pre class="output" role="log" aria-label="Answer" tabIndex={0}>
        {answer}
      </pre>
    </section>
  );
}
