// Sign-in: a bearer token (a gateway token or a Kubernetes ServiceAccount token), checked
// with GET /v1/whoami before it is kept (in sessionStorage, for this tab only).
import { useState } from "preact/hooks";
import type { Me } from "../main.tsx";
import { describe, problemOf, signIn, signInReason } from "../session.ts";
import { Alert, Field, PageTitle } from "../ui.tsx";

export function SignIn(props: { onSignedIn: (me: Me) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | undefined>(signInReason);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const t = value.trim();
    if (!t) return setError("Enter a bearer token.");
    setBusy(true);
    try {
      const res = await fetch("/v1/whoami", { headers: { authorization: `Bearer ${t}` } });
      if (!res.ok) throw await problemOf(res);
      const me = (await res.json()) as Me;
      signIn(t);
      setValue("");
      props.onSignedIn(me);
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <PageTitle>Sign in to agentry</PageTitle>
      <p>
        Paste a bearer token the gateway accepts: a token from its tokens file or Secret, or a Kubernetes
        token (for example <code>kubectl create token &lt;serviceaccount&gt;</code>). It is kept in this tab
        only and sent to this gateway only.
      </p>
      {error && <Alert>{error}</Alert>}
      <form onSubmit={(e) => void submit(e)}>
        <Field label="Bearer token">
          <input
            type="password"
            name="token"
            autoComplete="off"
            spellcheck={false}
            required
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          />
        </Field>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
