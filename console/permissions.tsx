// What the signed-in caller may do, from the gateway's permissions route (one
// SelfSubjectAccessReview per action, asked as the caller), so a page disables the controls
// that would only earn a 403 and says why next to them. Until the answer is in, or when it
// cannot be had, controls stay enabled: the gateway decides every action anyway, and a 403
// is shown where it happens (after which the answer is read again).
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { components } from "../clients/typescript/index.ts";
import type { Plural } from "./live.ts";
import { api, call } from "./session.ts";

type Actions = components["schemas"]["Permissions"]["actions"];
export type Action = keyof Actions;

export interface Permission {
  /** False only when the gateway said no. */
  allowed: boolean;
  /** Why not, as the gateway says it (when it said no). */
  reason?: string;
}

export interface Can {
  (action: Action): Permission;
  /** Asks again (after a 403, say). */
  refresh: () => void;
}

/** The caller's permissions in `ns`; with `resource` and `name`, about that object only. */
export function useCan(ns: string, resource?: Plural, name?: string): Can {
  const [actions, setActions] = useState<Actions | undefined>();
  const [asks, setAsks] = useState(0);
  useEffect(() => {
    let stopped = false;
    call(
      api().GET("/v1/namespaces/{namespace}/permissions", {
        params: {
          path: { namespace: ns },
          query: resource ? { for: name ? `${resource}/${name}` : resource } : {},
        },
      }),
    ).then(
      (p) => !stopped && setActions(p.actions),
      // Not known: the controls stay, and the gateway's answer to the action says the rest.
      () => !stopped && setActions(undefined),
    );
    return () => void (stopped = true);
  }, [ns, resource, name, asks]);
  const can = ((action: Action): Permission => {
    const a = actions?.[action];
    return a && !a.allowed ? { allowed: false, reason: a.reason } : { allowed: true };
  }) as Can;
  can.refresh = () => setAsks((x) => x + 1);
  return can;
}

/** The visible reason a control is disabled; `id` is what the control's aria-describedby names. */
export function Why(props: { id: string; p: Permission; children?: ComponentChildren }) {
  if (props.p.allowed) return null;
  return (
    <p class="why" id={props.id} data-testid={props.id}>
      {props.children ?? "Not allowed"}: {props.p.reason}
    </p>
  );
}

/** Props of a control the permission governs: disabled, and described by its reason. */
export const governed = (p: Permission, id: string, busy = false) => ({
  disabled: busy || !p.allowed,
  ...(p.allowed ? {} : { "aria-describedby": id }),
});
