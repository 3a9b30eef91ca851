// The agentry web console: a single-page app the gateway serves under /ui. It signs in with a
// bearer token, then reads and changes agentry's objects through the gateway's typed client
// and follows them live through the gateway's event stream.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./style.css";
import { stopAll } from "./live.ts";
import { AgentPage, AgentsPage } from "./pages/agents.tsx";
import { FleetPage, FleetsPage } from "./pages/fleets.tsx";
import { Overview, useEverywhere } from "./pages/overview.tsx";
import { PipelinePage, PipelinesPage } from "./pages/pipelines.tsx";
import { SignIn } from "./pages/signin.tsx";
import { WorkspacePage } from "./pages/workspace.tsx";
import { WorkspacesPage } from "./pages/workspaces.tsx";
import { navigate, pagePath, useRoute } from "./router.ts";
import { api, call, describe, signOut, token } from "./session.ts";
import { Alert, Link } from "./ui.tsx";

export interface Me {
  user: string;
  groups: string[];
}

const PAGES: [string, string][] = [
  ["fleets", "Fleets"],
  ["workspaces", "Workspaces"],
  ["agents", "Agents"],
  ["pipelines", "Pipelines"],
];

const NS_KEY = "agentry.console.namespace";

function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | undefined>();
  const [error, setError] = useState<string | undefined>();
  const signedIn = Boolean(token());

  useEffect(() => {
    if (!signedIn) {
      if (route[0] !== "signin") navigate("/ui/signin", true);
      return;
    }
    if (me) return;
    call(api().GET("/v1/whoami"))
      .then((who) => setMe(who))
      .catch((err: unknown) => setError(describe(err)));
  }, [signedIn, me, route[0]]);

  if (route[0] === "signin" || !signedIn)
    return (
      <SignIn
        onSignedIn={(who) => {
          setMe(who);
          setError(undefined);
          navigate("/ui/", true);
        }}
      />
    );
  return <Shell me={me} error={error} route={route} />;
}

function Shell(props: { me: Me | undefined; error: string | undefined; route: string[] }) {
  const { route } = props;
  const everywhere = useEverywhere();
  const inNs = route[0] === "n" ? route[1] : undefined;
  const namespaces = everywhere.namespaces;
  const ns = inNs ?? sessionStorage.getItem(NS_KEY) ?? namespaces[0];
  useEffect(() => {
    if (inNs) sessionStorage.setItem(NS_KEY, inNs);
  }, [inNs]);
  const page = route[0] === "n" ? route[2] : undefined;
  const name = route[0] === "n" ? route[3] : undefined;

  let body;
  if (!page) body = <Overview data={everywhere} />;
  else if (!ns) body = <Alert kind="info">Choose a namespace.</Alert>;
  else if (page === "fleets") body = name ? <FleetPage ns={ns} name={name} /> : <FleetsPage ns={ns} />;
  else if (page === "workspaces")
    body = name ? <WorkspacePage ns={ns} name={name} /> : <WorkspacesPage ns={ns} />;
  else if (page === "agents") body = name ? <AgentPage ns={ns} name={name} /> : <AgentsPage ns={ns} />;
  else if (page === "pipelines")
    body = name ? <PipelinePage ns={ns} name={name} /> : <PipelinesPage ns={ns} />;
  else body = <Alert>No page {page}.</Alert>;

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/ui/" class="brand">
          agentry
        </Link>
        <nav aria-label="Sections">
          <ul>
            <li>
              <Link href="/ui/" current={!page}>
                Overview
              </Link>
            </li>
            {ns &&
              PAGES.map(([p, label]) => (
                <li key={p}>
                  <Link href={pagePath(ns, p)} current={page === p}>
                    {label}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <label class="ns">
          <span>Namespace</span>
          <select
            value={ns ?? ""}
            onChange={(e) => navigate(pagePath((e.target as HTMLSelectElement).value, page ?? "fleets"))}
          >
            {ns && !namespaces.includes(ns) && <option value={ns}>{ns}</option>}
            {namespaces.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <div class="who">
          <span>
            Signed in as <strong data-testid="user">{props.me?.user ?? "…"}</strong>
          </span>
          <button
            type="button"
            onClick={() => {
              stopAll();
              signOut();
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        {props.error && <Alert>{props.error}</Alert>}
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
