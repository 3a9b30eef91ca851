// Overview: every namespace the caller can see agentry objects in (the gateway's
// cross-namespace lists, which ask RBAC namespace by namespace), counts and health of the
// four kinds, what is failing now (objects whose Ready condition is False), newest first, and
// the recent Warning events of those namespaces.
import { useEffect, useState } from "preact/hooks";
import { RecentWarnings } from "../events.tsx";
import type { Obj, Plural } from "../live.ts";
import { pagePath } from "../router.ts";
import { api, call, describe } from "../session.ts";
import { Alert, ago, Health, Link, PageTitle, readyOf, Table } from "../ui.tsx";

export const KIND_PAGES: [Plural, string, string][] = [
  ["sandboxfleets", "SandboxFleets", "fleets"],
  ["workspaces", "Workspaces", "workspaces"],
  ["agentruntimes", "AgentRuntimes", "agents"],
  ["pipelines", "Pipelines", "pipelines"],
];

export interface Everywhere {
  loaded: boolean;
  namespaces: string[];
  byKind: Partial<Record<Plural, Obj[]>>;
  errors: Partial<Record<Plural, string>>;
}

const REFRESH_MS = 15_000;
/** At most this many objects of a kind are read for the overview (its counts say so past it). */
const MAX_OBJECTS = 2000;

async function listEverywhere(plural: Plural): Promise<Obj[]> {
  const items: Obj[] = [];
  let cont: string | undefined;
  do {
    const page = (await call(
      api().GET(`/v1/${plural}` as "/v1/workspaces", {
        params: { query: { limit: 500, ...(cont ? { continue: cont } : {}) } },
      }),
    )) as unknown as { items?: Obj[]; metadata?: { continue?: string } };
    items.push(...(page.items ?? []));
    cont = page.metadata?.continue || undefined;
  } while (cont && items.length < MAX_OBJECTS);
  return items;
}

/** The four kinds across the namespaces the caller may list, read again every 15 s. */
export function useEverywhere(): Everywhere {
  const [state, setState] = useState<Everywhere>({ loaded: false, namespaces: [], byKind: {}, errors: {} });
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      const results = await Promise.allSettled(KIND_PAGES.map(([p]) => listEverywhere(p)));
      if (stopped) return;
      const byKind: Everywhere["byKind"] = {};
      const errors: Everywhere["errors"] = {};
      const namespaces = new Set<string>();
      results.forEach((r, i) => {
        const plural = KIND_PAGES[i]![0];
        if (r.status === "fulfilled") {
          byKind[plural] = r.value;
          for (const o of r.value) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);
        } else errors[plural] = describe(r.reason);
      });
      setState({ loaded: true, namespaces: [...namespaces].sort(), byKind, errors });
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  return state;
}

export function Overview(props: { data: Everywhere }) {
  const { data } = props;
  const failing: { plural: Plural; page: string; o: Obj }[] = [];
  for (const [plural, , page] of KIND_PAGES)
    for (const o of data.byKind[plural] ?? [])
      if (readyOf(o)?.status === "False") failing.push({ plural, page, o });
  failing.sort((a, b) =>
    (readyOf(b.o)?.lastTransitionTime ?? "").localeCompare(readyOf(a.o)?.lastTransitionTime ?? ""),
  );
  return (
    <>
      <PageTitle>Overview</PageTitle>
      {!data.loaded && <p aria-live="polite">Loading…</p>}
      <section aria-labelledby="kinds-h">
        <h2 id="kinds-h">Objects</h2>
        <ul class="cards">
          {KIND_PAGES.map(([plural, label]) => {
            const items = data.byKind[plural];
            const ready = items?.filter((o) => readyOf(o)?.status === "True").length ?? 0;
            const bad = items?.filter((o) => readyOf(o)?.status === "False").length ?? 0;
            return (
              <li key={plural} class="card">
                <h3>{label}</h3>
                {data.errors[plural] ? (
                  <p class="muted">{data.errors[plural]}</p>
                ) : (
                  <p>
                    <strong class="count">{items?.length ?? "…"}</strong> in total, {ready} ready
                    {bad ? <span class="bad">, {bad} failing</span> : null}
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      </section>
      <section aria-labelledby="ns-h">
        <h2 id="ns-h">Namespaces</h2>
        {data.loaded && data.namespaces.length === 0 ? (
          <p>No namespace with agentry objects that you may list.</p>
        ) : (
          <ul class="inline-list">
            {data.namespaces.map((ns) => (
              <li key={ns}>
                <Link href={pagePath(ns, "fleets")}>{ns}</Link>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="fail-h">
        <h2 id="fail-h">Failing now</h2>
        {Object.keys(data.errors).length > 0 && (
          <Alert kind="info">
            Some kinds could not be listed:{" "}
            {Object.entries(data.errors)
              .map(([k, e]) => `${k}: ${e}`)
              .join("; ")}
          </Alert>
        )}
        <Table
          caption="Objects whose Ready condition is False, latest change first"
          rows={failing}
          rowKey={(f) => `${f.plural}/${f.o.metadata.namespace}/${f.o.metadata.name}`}
          empty="Nothing is failing."
          columns={[
            [
              "Object",
              (f) => (
                <Link href={pagePath(f.o.metadata.namespace ?? "", f.page, f.o.metadata.name)}>
                  {f.o.metadata.namespace}/{f.o.metadata.name}
                </Link>
              ),
            ],
            ["Kind", (f) => KIND_PAGES.find(([p]) => p === f.plural)?.[1]],
            ["Health", (f) => <Health o={f.o} />],
            ["Why", (f) => readyOf(f.o)?.message ?? ""],
            ["Since", (f) => ago(readyOf(f.o)?.lastTransitionTime)],
          ]}
        />
      </section>
      {data.loaded && <RecentWarnings namespaces={data.namespaces} />}
    </>
  );
}
