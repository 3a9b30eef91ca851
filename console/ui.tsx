// Small shared pieces of the console's pages: links, alerts, condition badges, a paginated
// table, definition lists and an SVG chart of a fleet's size.
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { PAGE_SIZE, type ObjectState, type Obj, type Paging, type Sample } from "./live.ts";
import type { Can } from "./permissions.tsx";
import { navigate } from "./router.ts";
import { describe } from "./session.ts";

export function Link(props: {
  href: string;
  children: ComponentChildren;
  class?: string;
  current?: boolean;
}) {
  const click = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a
      href={props.href}
      onClick={click}
      class={props.class}
      aria-current={props.current ? "page" : undefined}
    >
      {props.children}
    </a>
  );
}

/** An error or notice a screen reader announces; `role=alert` for errors. */
export function Alert(props: { kind?: "error" | "info"; children: ComponentChildren }) {
  const kind = props.kind ?? "error";
  return (
    <div class={`alert alert-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

/** Moves focus to the page's heading when the page changes, for keyboard and screen-reader users. */
export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
    document.title = `${ref.current?.textContent ?? ""} · agentry`;
  }, [typeof props.children === "string" ? props.children : ""]);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  );
}

/** A detail page whose object is not there (yet): loading, missing, or why it could not be read. */
export function Missing(props: {
  title: string;
  kind: string;
  name: string;
  ns: string;
  state: ObjectState;
}) {
  return (
    <>
      <PageTitle>{props.title}</PageTitle>
      {props.state.error && <Alert>{props.state.error}</Alert>}
      <p>
        {props.state.missing
          ? `No ${props.kind} ${props.name} in ${props.ns}.`
          : props.state.loaded
            ? ""
            : "Loading…"}
      </p>
    </>
  );
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export const conditionsOf = (o: Obj): Condition[] =>
  (o.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];

export const readyOf = (o: Obj): Condition | undefined => conditionsOf(o).find((c) => c.type === "Ready");

/** Ready, NotReady or Unknown with the reason: the one word a list shows. */
export function Health(props: { o: Obj }) {
  const r = readyOf(props.o);
  const state = r?.status === "True" ? "ok" : r?.status === "False" ? "bad" : "unknown";
  const word = state === "ok" ? "Ready" : state === "bad" ? "Not ready" : "Unknown";
  return (
    <span class={`badge badge-${state}`} title={r?.message}>
      {word}
      {r?.reason && state !== "ok" ? `: ${r.reason}` : ""}
    </span>
  );
}

export function Conditions(props: { o: Obj }) {
  const cs = conditionsOf(props.o);
  if (!cs.length) return <p>No conditions reported yet.</p>;
  return (
    <Table
      caption="Conditions"
      rows={cs}
      rowKey={(c) => c.type}
      columns={[
        ["Type", (c) => c.type],
        ["Status", (c) => c.status],
        ["Reason", (c) => c.reason ?? ""],
        ["Message", (c) => c.message ?? ""],
        ["Since", (c) => ago(c.lastTransitionTime)],
      ]}
    />
  );
}

/**
 * A table that pages: by the gateway's pages when `paging` is given (a list read page by page
 * from the server), else by PAGE_SIZE rows of what it was given.
 */
export function Table<T>(props: {
  caption: string;
  rows: T[];
  rowKey: (row: T) => string;
  columns: [string, (row: T) => ComponentChildren][];
  empty?: string;
  paging?: Paging;
}) {
  const [page, setPage] = useState(0);
  const server = props.paging;
  const pages = Math.max(1, Math.ceil(props.rows.length / PAGE_SIZE));
  const p = Math.min(page, pages - 1);
  const rows = server ? props.rows : props.rows.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  const pager = server
    ? {
        ...server,
        label: `Page ${server.index + 1}${
          server.total !== undefined
            ? ` of ${Math.max(1, Math.ceil(server.total / server.size))} (${server.total} rows)`
            : ""
        }`,
      }
    : {
        hasPrevious: p > 0,
        hasNext: p < pages - 1,
        previous: () => setPage(p - 1),
        next: () => setPage(p + 1),
        label: `Page ${p + 1} of ${pages} (${props.rows.length} rows)`,
      };
  return (
    // A region that scrolls sideways on a narrow window, so it takes focus for the keyboard.
    <div class="table-wrap" role="region" aria-label={props.caption} tabIndex={0}>
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map(([h]) => (
              <th scope="col" key={h}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={props.columns.length}>{props.empty ?? "None."}</td>
            </tr>
          ) : (
            rows.map((r) => (
              <tr key={props.rowKey(r)}>
                {props.columns.map(([h, cell]) => (
                  <td key={h} data-label={h}>
                    {cell(r)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
      {(pager.hasPrevious || pager.hasNext) && (
        <nav class="pager" aria-label={`${props.caption} pages`}>
          <button type="button" disabled={!pager.hasPrevious} onClick={pager.previous}>
            Previous
          </button>
          <span aria-live="polite">{pager.label}</span>
          <button type="button" disabled={!pager.hasNext} onClick={pager.next}>
            Next
          </button>
        </nav>
      )}
    </div>
  );
}

export function Fields(props: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="fields">
      {props.rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v === undefined || v === null || v === "" ? "—" : v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** "3m ago" from an RFC 3339 time. */
export function ago(time: string | undefined): string {
  if (!time) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** A fraction as a meter with its number beside it; `limit` marks the threshold. */
export function Meter(props: { label: string; value: number; limit?: number }) {
  const over = props.limit !== undefined && props.value >= props.limit;
  const pct = Math.round(props.value * 100);
  return (
    <div class={`meter${over ? " over" : ""}`}>
      <span>
        {props.label} {pct}%{props.limit !== undefined ? ` (limit ${Math.round(props.limit * 100)}%)` : ""}
      </span>
      <meter min={0} max={1} value={props.value} high={props.limit} aria-label={`${props.label} ${pct}%`} />
    </div>
  );
}

/** Ready sandboxes, desired sandboxes and workspaces over the last minutes, as step lines. */
export function SizeChart(props: { samples: Sample[]; label: string }) {
  const w = 480;
  const h = 120;
  const pad = 20;
  const s = props.samples;
  if (s.length === 0) return <p>No samples yet.</p>;
  const now = Date.now();
  // From the first sample: what came before it is not known here.
  const t0 = Math.min(s[0]!.t, now - 1000);
  const max = Math.max(1, ...s.map((x) => Math.max(x.ready, x.desired, x.workspaces)));
  const x = (t: number) => pad + ((t - t0) / Math.max(1, now - t0)) * (w - 2 * pad);
  const y = (v: number) => h - pad - (v / max) * (h - 2 * pad);
  const line = (f: (x: Sample) => number) => {
    let d = "";
    s.forEach((p, i) => {
      d += i === 0 ? `M${x(p.t)},${y(f(p))}` : `H${x(p.t)}V${y(f(p))}`;
    });
    return `${d}H${x(now)}`;
  };
  const last = s[s.length - 1]!;
  const series: [string, string, (x: Sample) => number][] = [
    ["ready", "Ready sandboxes", (p) => p.ready],
    ["desired", "Desired sandboxes", (p) => p.desired],
    ["workspaces", "Workspaces", (p) => p.workspaces],
  ];
  const desc = `${props.label}: now ${last.ready} ready, ${last.desired} desired, ${last.workspaces} workspaces; ${s.length} samples since ${new Date(t0).toLocaleTimeString()}.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={desc}>
        <line x1={pad} y1={h - pad} x2={w - pad} y2={h - pad} class="axis" />
        <text x={pad} y={pad - 6} class="tick">
          {max}
        </text>
        <text x={pad} y={h - 4} class="tick">
          {new Date(t0).toLocaleTimeString()}
        </text>
        <text x={w - pad} y={h - 4} class="tick" text-anchor="end">
          now
        </text>
        {series.map(([k, , f]) => (
          <path key={k} d={line(f)} class={`series series-${k}`} />
        ))}
      </svg>
      <figcaption>
        {series.map(([k, name, f]) => (
          <span key={k} class={`legend legend-${k}`}>
            {name}: {f(last)}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** A form field with its label. */
export function Field(props: { label: string; hint?: string; children: JSX.Element }) {
  return (
    <label class="field">
      <span>{props.label}</span>
      {props.children}
      {props.hint && <small>{props.hint}</small>}
    </label>
  );
}

/** Runs an action, tracking busy and the error to show; a 403 makes `can` ask again. */
export function useAction(
  can?: Can,
): [{ busy: boolean; error?: string; done?: string }, (f: () => Promise<string | void>) => Promise<void>] {
  const [state, setState] = useState<{ busy: boolean; error?: string; done?: string }>({ busy: false });
  const run = async (f: () => Promise<string | void>) => {
    setState({ busy: true });
    try {
      const done = await f();
      setState({ busy: false, ...(done ? { done } : {}) });
    } catch (err) {
      if ((err as { status?: number }).status === 403) can?.refresh();
      setState({ busy: false, error: describe(err) });
    }
  };
  return [state, run];
}

export function ActionResult(props: { state: { error?: string; done?: string } }) {
  if (props.state.error) return <Alert>{props.state.error}</Alert>;
  if (props.state.done) return <Alert kind="info">{props.state.done}</Alert>;
  return null;
}
