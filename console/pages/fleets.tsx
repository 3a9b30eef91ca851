// SandboxFleets: each fleet's size (min, desired, ready, max) and capacity used, a page at a
// time; a fleet's page adds a grid of its sandboxes (the workspaces each holds, cpu and memory
// against the fleet's pressure thresholds, draining), a chart of its size over the last minutes
// (from the live stream), and pinning or unpinning its size (PATCH spec.replicas, as `kubectl
// scale` does) for callers who may patch the fleet; others see why they may not.
import { useEffect, useState } from "preact/hooks";
import type { components } from "../../clients/typescript/index.ts";
import { fleetHistory, useObject, usePage, type Obj } from "../live.ts";
import { governed, useCan, Why } from "../permissions.tsx";
import { pagePath } from "../router.ts";
import { api, authFetch, call, describe, enc } from "../session.ts";
import {
  ActionResult,
  Alert,
  Conditions,
  Field,
  Fields,
  Health,
  Link,
  Meter,
  PageTitle,
  SizeChart,
  Table,
  Missing,
  useAction,
} from "../ui.tsx";

interface FleetSpec {
  minReplicas?: number;
  maxReplicas?: number;
  replicas?: number;
  maxWorkspacesPerSandbox?: number;
  pressure?: { cpu?: number; memory?: number };
}
interface FleetStatus {
  replicas?: number;
  readyReplicas?: number;
  desiredReplicas?: number;
  workspaces?: number;
  capacity?: number;
  lastScaleReason?: string;
  lastScaleTime?: string;
}
const spec = (o: Obj) => (o.spec ?? {}) as FleetSpec;
const status = (o: Obj) => (o.status ?? {}) as FleetStatus;

function used(o: Obj): string {
  const s = status(o);
  return s.capacity ? `${s.workspaces ?? 0} of ${s.capacity}` : `${s.workspaces ?? 0}`;
}

export function FleetsPage(props: { ns: string }) {
  const fleets = usePage(props.ns, "sandboxfleets");
  return (
    <>
      <PageTitle>Sandbox fleets</PageTitle>
      {fleets.error && <Alert>{fleets.error}</Alert>}
      <Table
        caption={`SandboxFleets in ${props.ns}`}
        rows={fleets.items}
        paging={fleets.paging}
        rowKey={(o) => o.metadata.name}
        empty={fleets.loaded ? "No fleets in this namespace." : "Loading…"}
        columns={[
          [
            "Name",
            (o) => <Link href={pagePath(props.ns, "fleets", o.metadata.name)}>{o.metadata.name}</Link>,
          ],
          ["Health", (o) => <Health o={o} />],
          ["Min", (o) => spec(o).minReplicas],
          ["Desired", (o) => status(o).desiredReplicas ?? "—"],
          ["Ready", (o) => status(o).readyReplicas ?? 0],
          ["Max", (o) => spec(o).maxReplicas],
          ["Pinned", (o) => spec(o).replicas ?? "no"],
          ["Workspaces", used],
        ]}
      />
    </>
  );
}

export type Sandbox = components["schemas"]["SandboxList"]["items"][number];

const SANDBOX_REFRESH_MS = 5000;

/** The fleet's sandboxes with their load, read again every few seconds while shown. */
function useSandboxes(ns: string, name: string): { items: Sandbox[]; error?: string } {
  const [state, setState] = useState<{ items: Sandbox[]; error?: string }>({ items: [] });
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const res = await authFetch(`/v1/namespaces/${enc(ns)}/sandboxfleets/${enc(name)}/sandboxes`);
        const body = (await res.json()) as { items: Sandbox[] };
        if (!stopped) setState({ items: body.items });
      } catch (err) {
        if (!stopped) setState((s) => ({ ...s, error: describe(err) }));
      }
    };
    void load();
    const timer = setInterval(() => void load(), SANDBOX_REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [ns, name]);
  return state;
}

export function FleetPage(props: { ns: string; name: string }) {
  const { ns, name } = props;
  const state = useObject(ns, "sandboxfleets", name);
  const sandboxes = useSandboxes(ns, name);
  const fleet = state.object;
  if (!fleet)
    return <Missing title={`Fleet ${name}`} kind="SandboxFleet" name={name} ns={ns} state={state} />;
  const sp = spec(fleet);
  const st = status(fleet);
  return (
    <>
      <PageTitle>{`Fleet ${name}`}</PageTitle>
      {state.error && <Alert>{state.error}</Alert>}
      <Fields
        rows={[
          ["Health", <Health o={fleet} />],
          [
            "Replicas (min / desired / ready / max)",
            `${sp.minReplicas} / ${st.desiredReplicas ?? "—"} / ${st.readyReplicas ?? 0} / ${sp.maxReplicas}`,
          ],
          ["Pinned size", sp.replicas ?? "no (autoscaled)"],
          ["Workspaces placed", used(fleet)],
          ["Last scale", st.lastScaleReason ? `${st.lastScaleReason}` : undefined],
        ]}
      />
      {st.capacity ? (
        <Meter label="Capacity used" value={Math.min(1, (st.workspaces ?? 0) / st.capacity)} />
      ) : null}
      <section aria-labelledby="size-h">
        <h2 id="size-h">Size over the last minutes</h2>
        <SizeChart samples={fleetHistory(ns, name)} label={`Fleet ${name}`} />
      </section>
      <Scale fleet={fleet} ns={ns} />
      <section aria-labelledby="sandboxes-h">
        <h2 id="sandboxes-h">Sandboxes</h2>
        {sandboxes.error && <Alert>{sandboxes.error}</Alert>}
        <ul class="grid" aria-label={`Sandboxes of ${name}`}>
          {sandboxes.items.map((s) => (
            <li key={s.name} class={`sandbox${s.draining ? " draining" : ""}${s.ready ? "" : " unready"}`}>
              <h3>{s.name}</h3>
              <p>
                {s.ready ? "Ready" : "Not ready"}
                {s.draining ? " · draining" : ""}
                {s.maxWorkspaces ? ` · ${s.workspaces ?? 0} of ${s.maxWorkspaces} workspaces` : ""}
              </p>
              {s.error && <p class="muted">{s.error}</p>}
              {s.cpu !== undefined && <Meter label="CPU" value={s.cpu} limit={sp.pressure?.cpu ?? 0.8} />}
              {s.memory !== undefined && (
                <Meter label="Memory" value={s.memory} limit={sp.pressure?.memory ?? 0.8} />
              )}
              <ul class="ws-list" aria-label={`Workspaces on ${s.name}`}>
                {(s.placed ?? []).map((w) => (
                  <li key={w.name}>
                    <Link href={pagePath(ns, "workspaces", w.name)}>{w.name}</Link>
                    {w.ownerId ? <span class="muted"> ({w.ownerId})</span> : null}
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
        {sandboxes.items.length === 0 && !sandboxes.error && <p>No sandboxes yet.</p>}
      </section>
      <Conditions o={fleet} />
    </>
  );
}

function Scale(props: { fleet: Obj; ns: string }) {
  const sp = spec(props.fleet);
  const [size, setSize] = useState(
    String(sp.replicas ?? status(props.fleet).desiredReplicas ?? sp.minReplicas ?? 0),
  );
  const can = useCan(props.ns, "sandboxfleets", props.fleet.metadata.name);
  const may = can("scaleFleet");
  const [state, run] = useAction(can);
  const patch = (replicas: number | null) =>
    run(async () => {
      await call(
        api().PATCH("/v1/namespaces/{namespace}/sandboxfleets/{name}", {
          params: { path: { namespace: props.ns, name: props.fleet.metadata.name } },
          body: { spec: { replicas } } as never,
        }),
      );
      return replicas === null
        ? "Unpinned: the fleet scales itself again."
        : `Pinned at ${replicas} sandboxes.`;
    });
  return (
    <section aria-labelledby="scale-h">
      <h2 id="scale-h">Scale</h2>
      <Why id="scale-why" p={may}>
        You may not pin or unpin this fleet
      </Why>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void patch(Number(size));
        }}
      >
        <Field label="Pinned size" hint={`between ${sp.minReplicas} and ${sp.maxReplicas}`}>
          <input
            type="number"
            name="replicas"
            min={sp.minReplicas}
            max={sp.maxReplicas}
            required
            value={size}
            onInput={(e) => setSize((e.target as HTMLInputElement).value)}
            {...governed(may, "scale-why")}
          />
        </Field>
        <button type="submit" {...governed(may, "scale-why", state.busy)}>
          Pin size
        </button>
        <button
          type="button"
          {...governed(may, "scale-why", state.busy || sp.replicas === undefined)}
          onClick={() => void patch(null)}
        >
          Unpin
        </button>
      </form>
      <ActionResult state={state} />
    </section>
  );
}
