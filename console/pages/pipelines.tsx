// Pipelines: schedule, phase, last run and the latest failure's reason; a pipeline's page lists
// its runs with their status, starts a run now, and shows a run's logs (its pod's log, read
// through the gateway as the caller); a caller who may not do either sees why.
import { useEffect, useState } from "preact/hooks";
import { useObject, usePage, type Obj } from "../live.ts";
import { governed, useCan, Why } from "../permissions.tsx";
import { pagePath } from "../router.ts";
import { api, authFetch, call, describe, enc } from "../session.ts";
import {
  ActionResult,
  Alert,
  ago,
  Conditions,
  Fields,
  Health,
  Link,
  PageTitle,
  Table,
  Missing,
  useAction,
} from "../ui.tsx";

interface PlStatus {
  phase?: string;
  active?: number;
  lastScheduleTime?: string;
  lastSuccessfulTime?: string;
  lastFailure?: { name?: string; reason?: string; message?: string };
}
const plStatus = (o: Obj) => (o.status ?? {}) as PlStatus;
const schedule = (o: Obj): string => (o.spec as { schedule?: string } | undefined)?.schedule || "once";

export function PipelinesPage(props: { ns: string }) {
  const pipelines = usePage(props.ns, "pipelines");
  return (
    <>
      <PageTitle>Pipelines</PageTitle>
      {pipelines.error && <Alert>{pipelines.error}</Alert>}
      <Table
        caption={`Pipelines in ${props.ns}`}
        rows={pipelines.items}
        paging={pipelines.paging}
        rowKey={(o) => o.metadata.name}
        empty={pipelines.loaded ? "No pipelines in this namespace." : "Loading…"}
        columns={[
          [
            "Name",
            (o) => <Link href={pagePath(props.ns, "pipelines", o.metadata.name)}>{o.metadata.name}</Link>,
          ],
          ["Schedule", (o) => <code>{schedule(o)}</code>],
          ["Phase", (o) => plStatus(o).phase ?? "—"],
          ["Health", (o) => <Health o={o} />],
          ["Last run", (o) => ago(plStatus(o).lastScheduleTime)],
          ["Latest failure", (o) => plStatus(o).lastFailure?.reason ?? ""],
        ]}
      />
    </>
  );
}

interface Run {
  name: string;
  job: string;
  phase: string;
  reason?: string;
  message?: string;
  startTime?: string;
  completionTime?: string;
  pods: { name: string; phase: string }[];
}

export function PipelinePage(props: { ns: string; name: string }) {
  const { ns, name } = props;
  const pipeline = useObject(ns, "pipelines", name);
  const pl = pipeline.object;
  const can = useCan(ns, "pipelines", name);
  const mayRun = can("runPipeline");
  const mayLogs = can("readLogs");
  const [runs, setRuns] = useState<Run[] | undefined>();
  const [runsError, setRunsError] = useState<string | undefined>();
  const [logs, setLogs] = useState<{ run: string; text: string } | undefined>();
  const [state, run] = useAction(can);
  // Runs are read again whenever the pipeline's status changes (a run started or ended).
  const version = pl?.metadata.resourceVersion;
  useEffect(() => {
    call(
      api().GET("/v1/namespaces/{namespace}/pipelines/{name}/runs", {
        params: { path: { namespace: ns, name } },
      }),
    )
      .then((l) => setRuns((l as { items: Run[] }).items))
      .catch((err: unknown) => setRunsError(describe(err)));
  }, [ns, name, version]);
  if (!pl) return <Missing title={`Pipeline ${name}`} kind="Pipeline" name={name} ns={ns} state={pipeline} />;
  const st = plStatus(pl);
  const runNow = () =>
    run(async () => {
      const a = await call(
        api().POST("/v1/namespaces/{namespace}/pipelines/{name}/runs", {
          params: { path: { namespace: ns, name } },
        }),
      );
      return (a as { message?: string }).message ?? "Run requested.";
    });
  const showLogs = (r: string) =>
    run(async () => {
      const res = await authFetch(
        `/v1/namespaces/${enc(ns)}/pipelines/${enc(name)}/runs/${enc(r)}/logs?tailLines=2000`,
      );
      setLogs({ run: r, text: await res.text() });
    });
  return (
    <>
      <PageTitle>{`Pipeline ${name}`}</PageTitle>
      <Fields
        rows={[
          ["Health", <Health o={pl} />],
          ["Schedule", <code>{schedule(pl)}</code>],
          ["Phase", st.phase],
          ["Active runs", st.active ?? 0],
          ["Last run", ago(st.lastScheduleTime)],
          ["Last success", ago(st.lastSuccessfulTime)],
          [
            "Latest failure",
            st.lastFailure
              ? `${st.lastFailure.name ?? ""}: ${st.lastFailure.reason ?? ""} ${st.lastFailure.message ?? ""}`
              : "none",
          ],
        ]}
      />
      {pipeline.error && <Alert>{pipeline.error}</Alert>}
      <div class="row">
        <button type="button" {...governed(mayRun, "run-why", state.busy)} onClick={() => void runNow()}>
          Run now
        </button>
      </div>
      <Why id="run-why" p={mayRun}>
        You may not start runs of this pipeline
      </Why>
      <ActionResult state={state} />
      <section aria-labelledby="runs-h">
        <h2 id="runs-h">Runs</h2>
        {runsError && <Alert>{runsError}</Alert>}
        <Why id="logs-why" p={mayLogs}>
          You may not read the runs' logs
        </Why>
        {runs && (
          <Table
            caption="Runs, newest first"
            rows={[...runs].sort((a, b) => (b.startTime ?? "").localeCompare(a.startTime ?? ""))}
            rowKey={(r) => r.name}
            empty="No runs yet."
            columns={[
              ["Run", (r) => r.name],
              ["Status", (r) => r.phase],
              ["Reason", (r) => [r.reason, r.message].filter(Boolean).join(": ")],
              ["Started", (r) => ago(r.startTime)],
              [
                "Logs",
                (r) => (
                  <button
                    type="button"
                    {...governed(mayLogs, "logs-why", r.pods.length === 0)}
                    onClick={() => void showLogs(r.name)}
                    aria-label={`Logs of ${r.name}`}
                  >
                    Logs
                  </button>
                ),
              ],
            ]}
          />
        )}
      </section>
      {logs && (
        <figure class="viewer">
          <figcaption>Logs of {logs.run}</figcaption>
          <pre tabIndex={0}>{logs.text || "(empty)"}</pre>
        </figure>
      )}
      <Conditions o={pl} />
    </>
  );
}
