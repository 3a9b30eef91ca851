// Kubernetes Events in the console: an object's recent events on its page, and the recent
// warnings of the namespaces the caller sees on the overview (the gateway's events route).
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { components } from "../clients/typescript/schema.ts";
import { api, call, describe } from "./session.ts";
import { Alert, ago, Table } from "./ui.tsx";

type KubeEvent = components["schemas"]["Event"];
type Located = KubeEvent & { namespace: string };

const REFRESH_MS = 15_000;
/** The overview reads the warnings of at most this many namespaces. */
const MAX_NAMESPACES = 20;

function list(
  ns: string,
  query: { kind?: string; name?: string; type?: "Normal" | "Warning"; limit?: number },
) {
  return call(api().GET("/v1/namespaces/{namespace}/events", { params: { path: { namespace: ns }, query } }));
}

/** Polls `load` every 15 s while mounted; what it gave last, or why it failed. */
function usePolled<T>(load: () => Promise<T>, deps: unknown[]): { value?: T; error?: string } {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  useEffect(() => {
    let stopped = false;
    const run = () =>
      load().then(
        (value) => !stopped && setState({ value }),
        (err: unknown) => !stopped && setState({ error: describe(err) }),
      );
    void run();
    const timer = setInterval(() => void run(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
    // The caller names what reloads it (deps), as with useEffect.
  }, deps);
  return state;
}

const eventColumns: [string, (e: KubeEvent) => ComponentChildren][] = [
  ["Type", (e) => (e.type === "Warning" ? <span class="bad">Warning</span> : e.type)],
  ["Reason", (e) => e.reason],
  ["Message", (e) => e.message],
  ["Count", (e) => e.count],
  ["Last seen", (e) => ago(e.lastTime ?? undefined)],
];

/** The recent events of one object. */
export function ObjectEvents(props: { ns: string; kind: string; name: string }) {
  const { ns, kind, name } = props;
  const events = usePolled(() => list(ns, { kind, name, limit: 50 }), [ns, kind, name]);
  return (
    <section aria-labelledby="events-h">
      <h2 id="events-h">Events</h2>
      {events.error && <Alert kind="info">Events could not be read: {events.error}</Alert>}
      <Table
        caption={`Events of ${kind} ${name}, newest first`}
        rows={events.value?.items ?? []}
        rowKey={(e) => `${e.reason}/${e.lastTime}/${e.message}`}
        empty={events.value ? "No recent events." : "Loading…"}
        columns={eventColumns}
      />
    </section>
  );
}

/** The recent warnings across the namespaces given (the first 20), newest first. */
export function RecentWarnings(props: { namespaces: string[] }) {
  const namespaces = props.namespaces.slice(0, MAX_NAMESPACES);
  const warnings = usePolled(async () => {
    const answers = await Promise.allSettled(
      namespaces.map((ns) => list(ns, { type: "Warning", limit: 20 })),
    );
    const items: Located[] = [];
    answers.forEach((a, i) => {
      if (a.status === "fulfilled")
        for (const e of a.value.items) items.push({ ...e, namespace: namespaces[i]! });
    });
    return items.sort((a, b) => (b.lastTime ?? "").localeCompare(a.lastTime ?? "")).slice(0, 50);
  }, [namespaces.join(",")]);
  return (
    <section aria-labelledby="warnings-h">
      <h2 id="warnings-h">Recent warnings</h2>
      {warnings.error && <Alert kind="info">Events could not be read: {warnings.error}</Alert>}
      <Table
        caption="Warning events of the namespaces you see, newest first"
        rows={warnings.value ?? []}
        rowKey={(e) => `${e.namespace}/${e.object.kind}/${e.object.name}/${e.reason}/${e.lastTime}`}
        empty={warnings.value ? "No recent warnings." : "Loading…"}
        columns={[
          ["Object", (e) => `${e.namespace}/${e.object.name} (${e.object.kind})`],
          ...eventColumns.slice(1),
        ]}
      />
    </section>
  );
}
