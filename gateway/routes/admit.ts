// The admission rules of the webhook (lib/admission), run by the gateway before it writes:
// same rules, same messages, same HTTP codes. Referenced objects are read as the caller
// (the impersonated client), so a verdict never tells a caller about objects it may not read.
import type { Response } from "express";
import type { KubeClient } from "../../lib/kube/client.ts";
import { kubeLookup } from "../../lib/admission/lookup.ts";
import {
  DEFAULT_POLICY,
  validate,
  type AdmissionObject,
  type Policy,
  type Verdict,
} from "../../lib/admission/index.ts";
import { problemOf, type Problem } from "../problem.ts";

/** The gateway's admission policy: the webhook's flags, with Secret checks off by default. */
export interface AdmissionSettings {
  policy: Policy;
  /** Deny references to Secrets (or keys) that do not exist; needs the caller to read Secrets. */
  checkSecretRefs: boolean;
}

export const DEFAULT_ADMISSION: AdmissionSettings = { policy: DEFAULT_POLICY, checkSecretRefs: false };

/** Time limit of each read a rule makes. */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * One admission warning as an HTTP Warning header value, as the apiserver sends them
 * (`299 - "text"`); quotes and backslashes are escaped, other characters outside printable
 * ASCII become \uXXXX (a header cannot carry them).
 */
export function warningHeader(text: string): string {
  const escaped = text
    .replace(/["\\]/g, (c) => `\\${c}`)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `299 - "${escaped}"`;
}

/** A denying verdict as a problem: the verdict's code and message, one error per field. */
export function verdictProblem(kind: string, v: Verdict): Problem {
  const errors = (v.problems ?? []).map((p) => ({ path: p.field, message: p.message }));
  return problemOf(v.code, v.message, {
    ...(errors.length ? { errors } : {}),
    extra: { reason: "AdmissionDenied", kind },
  });
}

/**
 * Runs the kind's rules for a write (`object` undefined on delete, `oldObject` on create) as
 * the caller. Warnings become Warning headers on `res`; a denial is thrown as a problem.
 */
export async function admit(
  caller: KubeClient,
  settings: AdmissionSettings,
  res: Response,
  kind: string,
  object: AdmissionObject | undefined,
  oldObject: AdmissionObject | undefined,
): Promise<void> {
  const lookup = kubeLookup(caller, LOOKUP_TIMEOUT_MS, settings.checkSecretRefs);
  const v = await validate(kind, object, oldObject, lookup, settings.policy);
  if (v.warnings.length) res.setHeader("warning", v.warnings.map(warningHeader));
  if (!v.allowed) throw verdictProblem(kind, v);
}
