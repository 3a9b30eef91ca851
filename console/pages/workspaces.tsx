// Workspaces: the namespace's workspaces, a page at a time and live, and a form that creates
// one (fleet, owner, git source) through the gateway, which runs the same admission rules as
// the webhook; a caller who may not create workspaces sees why instead.
import { useState } from "preact/hooks";
import { usePage, type Obj } from "../live.ts";
import { governed, useCan, Why } from "../permissions.tsx";
import { navigate, pagePath } from "../router.ts";
import { api, call } from "../session.ts";
import { ActionResult, Alert, Field, Health, Link, PageTitle, Table, useAction } from "../ui.tsx";

interface WsSpec {
  fleetRef?: { name?: string };
  ownerId?: string;
  suspended?: boolean;
  source?: { git?: { url?: string; ref?: string } };
}
interface WsStatus {
  phase?: string;
  sandboxPod?: string;
}
export const wsSpec = (o: Obj) => (o.spec ?? {}) as WsSpec;
export const wsStatus = (o: Obj) => (o.status ?? {}) as WsStatus;

export function WorkspacesPage(props: { ns: string }) {
  const workspaces = usePage(props.ns, "workspaces");
  // The fleets a new workspace may name: the first page of them.
  const fleets = usePage(props.ns, "sandboxfleets", FLEET_CHOICES);
  return (
    <>
      <PageTitle>Workspaces</PageTitle>
      {workspaces.error && <Alert>{workspaces.error}</Alert>}
      <Table
        caption={`Workspaces in ${props.ns}`}
        rows={workspaces.items}
        paging={workspaces.paging}
        rowKey={(o) => o.metadata.name}
        empty={workspaces.loaded ? "No workspaces in this namespace." : "Loading…"}
        columns={[
          [
            "Name",
            (o) => <Link href={pagePath(props.ns, "workspaces", o.metadata.name)}>{o.metadata.name}</Link>,
          ],
          ["Health", (o) => <Health o={o} />],
          ["Phase", (o) => wsStatus(o).phase ?? "—"],
          ["Fleet", (o) => wsSpec(o).fleetRef?.name],
          ["Owner", (o) => wsSpec(o).ownerId ?? "—"],
          ["Sandbox", (o) => wsStatus(o).sandboxPod ?? "—"],
        ]}
      />
      <CreateWorkspace
        ns={props.ns}
        fleets={fleets.items.map((f) => f.metadata.name)}
        more={fleets.paging.hasNext}
      />
    </>
  );
}

const FLEET_CHOICES = 100;

function CreateWorkspace(props: { ns: string; fleets: string[]; more: boolean }) {
  const [form, setForm] = useState({ name: "", fleet: "", owner: "", url: "", ref: "" });
  const can = useCan(props.ns, "workspaces");
  const may = can("createWorkspace");
  const [state, run] = useAction(can);
  const set = (k: keyof typeof form) => (e: Event) =>
    setForm({ ...form, [k]: (e.target as HTMLInputElement | HTMLSelectElement).value });
  const fleet = form.fleet || props.fleets[0] || "";
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const created = await call(
        api().POST("/v1/namespaces/{namespace}/workspaces", {
          params: { path: { namespace: props.ns } },
          body: {
            metadata: { name: form.name.trim() },
            spec: {
              fleetRef: { name: fleet },
              ...(form.owner.trim() ? { ownerId: form.owner.trim() } : {}),
              ...(form.url.trim()
                ? {
                    source: {
                      git: { url: form.url.trim(), ...(form.ref.trim() ? { ref: form.ref.trim() } : {}) },
                    },
                  }
                : {}),
            },
          } as never,
        }),
      );
      navigate(pagePath(props.ns, "workspaces", (created as Obj).metadata.name));
    });
  };
  return (
    <section aria-labelledby="create-h">
      <h2 id="create-h">Create a workspace</h2>
      <Why id="create-why" p={may}>
        You may not create workspaces here
      </Why>
      <form onSubmit={submit} class="stack">
        <Field label="Name">
          <input
            name="name"
            required
            pattern="[a-z0-9]([\-a-z0-9]*[a-z0-9])?"
            value={form.name}
            onInput={set("name")}
          />
        </Field>
        <Field label="Fleet" {...(props.more ? { hint: `the first ${FLEET_CHOICES} fleets` } : {})}>
          <select name="fleet" required value={fleet} onChange={set("fleet")}>
            {props.fleets.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Owner (optional)" hint="workspaces of one owner share a sandbox">
          <input name="owner" value={form.owner} onInput={set("owner")} />
        </Field>
        <Field label="Git repository URL (optional)">
          <input name="url" type="url" value={form.url} onInput={set("url")} />
        </Field>
        <Field label="Git ref (optional)" hint="branch, tag or commit; default main">
          <input name="ref" value={form.ref} onInput={set("ref")} />
        </Field>
        <button type="submit" {...governed(may, "create-why", state.busy || !fleet)}>
          Create workspace
        </button>
      </form>
      <ActionResult state={state} />
    </section>
  );
}
