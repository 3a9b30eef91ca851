// The admission rules of agentry, shared by the webhook and the gateway.
//
//   const verdict = await validate(kind, object, oldObject, lookup, policy);
//   if (!verdict.allowed) reject(verdict.code, verdict.message);   // same text as the webhook
//   warnings: verdict.warnings (send them as Warning headers)
//
// `object` is undefined on DELETE and `oldObject` on CREATE. Objects are expected to have
// passed schema validation already (the CRD on the apiserver, the zod schema in the gateway).
// Updates that leave spec unchanged (metadata, finalizers) and objects being deleted are
// always allowed, and only what a request changes is checked, so a dependency that went
// missing later never blocks unrelated writes. A rule that throws is a deny (code 500).
import { isDeepStrictEqual } from "node:util";
import { validateAgentRuntime } from "./agentruntime.ts";
import { validatePipeline } from "./pipeline.ts";
import { validateSandboxFleet } from "./sandboxfleet.ts";
import { validateWorkspace } from "./workspace.ts";
import { allowed, type AdmissionObject, type Lookup, type Policy, type Rule, type Verdict } from "./types.ts";
import { errorMessage } from "../log.ts";

export * from "./types.ts";
export { parseImage, registryAllowed } from "./images.ts";
export { isTimeZone } from "./schedule.ts";

export const rules: { [K in AdmissionObject["kind"]]: Rule<Extract<AdmissionObject, { kind: K }>> } = {
  AgentRuntime: validateAgentRuntime,
  Pipeline: validatePipeline,
  SandboxFleet: validateSandboxFleet,
  Workspace: validateWorkspace,
};

export const isAgentryKind = (kind: string): kind is AdmissionObject["kind"] => Object.hasOwn(rules, kind);

/** A Lookup that asks its source at most once per object during one review. */
export function memoLookup(source: Lookup): Lookup {
  const cache = new Map<string, Promise<unknown>>();
  const memo =
    <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      const key = `${name}\u0000${args.join("\u0000")}`;
      let hit = cache.get(key) as Promise<R> | undefined;
      if (!hit) {
        hit = fn(...args);
        cache.set(key, hit);
      }
      return hit;
    };
  return {
    secretKeys: memo("secret", (ns: string, n: string) => source.secretKeys(ns, n)),
    workspace: memo("ws", (ns: string, n: string) => source.workspace(ns, n)),
    sandboxFleet: memo("sbf", (ns: string, n: string) => source.sandboxFleet(ns, n)),
    agentRuntime: memo("ar", (ns: string, n: string) => source.agentRuntime(ns, n)),
    workspacesOfFleet: memo("wsof", (ns: string, n: string) => source.workspacesOfFleet(ns, n)),
  };
}

/** Validates one request for an agentry kind; never throws. */
export async function validate(
  kind: string,
  object: AdmissionObject | undefined,
  oldObject: AdmissionObject | undefined,
  lookup: Lookup,
  policy: Policy,
): Promise<Verdict> {
  if (!isAgentryKind(kind))
    return {
      allowed: false,
      code: 400,
      message: `agentry has no admission rules for kind ${kind}`,
      warnings: [],
    };
  if (object && oldObject) {
    if (object.metadata.deletionTimestamp) return allowed();
    if (isDeepStrictEqual(object.spec, oldObject.spec)) return allowed();
  }
  try {
    const rule = rules[kind] as Rule<AdmissionObject>;
    return await rule(object, oldObject, memoLookup(lookup), policy);
  } catch (err) {
    const why = errorMessage(err);
    // A read the caller may not make (the gateway looks up as the caller): their answer is 403.
    if ((err as { status?: unknown }).status === 403) {
      return { allowed: false, code: 403, message: `cannot check this ${kind}: ${why}`, warnings: [] };
    }
    return {
      allowed: false,
      code: 500,
      message: `could not check this ${kind}: ${why}; try again, and if it persists look at the agentry webhook's logs`,
      warnings: [],
    };
  }
}
