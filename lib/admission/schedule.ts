// Cron schedules as a CronJob will run them: five fields (or a macro, or @every), only the
// syntax Kubernetes' cron parser knows, a real IANA time zone, and a schedule that fires.
import { CronExpressionParser } from "cron-parser";
import { ONCE_SCHEDULES } from "../../api/v1alpha1/index.ts";
import type { Findings } from "./types.ts";
import { durationMs } from "../cli/duration.ts";
import { errorMessage } from "../log.ts";

const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};
const FIELD_NAMES = ["minute", "hour", "day-of-month", "month", "day-of-week"];
/** What Kubernetes' cron parser accepts in a field: numbers, names, * ? / , - (no L W # H). */
const FIELD_SYNTAX =
  /^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/[0-9]+)?(,(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(\/[0-9]+)?)*$/;
const NAMES = /^(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT|[0-9]+)$/i;
const EXAMPLE =
  'use five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *", or a macro such as @daily';

/** True when `zone` is an IANA time zone this runtime knows (as the CronJob controller will). */
export function isTimeZone(zone: string): boolean {
  if (zone.toLowerCase() === "local") return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function checkCronFields(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) return `has ${fields.length} fields`;
  for (const [i, field] of fields.entries()) {
    const tokens = field.split(/[,\-/]/).filter((t) => t !== "*" && t !== "?");
    if (!FIELD_SYNTAX.test(field) || !tokens.every((t) => NAMES.test(t)))
      return `its ${FIELD_NAMES[i]} field "${field}" uses syntax a CronJob does not support (L, W, # and H are not allowed)`;
  }
  return undefined;
}

/** Checks spec.schedule with spec.timeZone; nothing to check for a run-once schedule. */
export function checkSchedule(f: Findings, schedule: string, timeZone: string | undefined): void {
  if ((ONCE_SCHEDULES as readonly string[]).includes(schedule)) return;
  if (timeZone !== undefined && !isTimeZone(timeZone)) {
    f.deny(
      "spec.timeZone",
      `"${timeZone}" is not an IANA time zone; use a name such as Europe/Paris, America/New_York or Etc/UTC`,
    );
    return;
  }
  if (schedule.startsWith("@every")) {
    const m = /^@every ((\d+(ms|s|m|h))+)$/.exec(schedule);
    if (!m || !durationMs(m[1]!))
      f.deny(
        "spec.schedule",
        `"${schedule}" is not a valid @every schedule; use a positive duration such as "@every 30m"`,
      );
    return;
  }
  const expr = schedule.startsWith("@") ? MACROS[schedule] : schedule;
  if (expr === undefined) {
    f.deny(
      "spec.schedule",
      `"${schedule}" is not a known macro; use one of ${Object.keys(MACROS).join(", ")} or ${EXAMPLE}`,
    );
    return;
  }
  const syntax = checkCronFields(expr);
  if (syntax) {
    f.deny("spec.schedule", `"${schedule}" is not a valid cron expression: ${syntax}; ${EXAMPLE}`);
    return;
  }
  try {
    const next = CronExpressionParser.parse(expr, timeZone ? { tz: timeZone } : {}).next();
    if (Number.isNaN(next.getTime())) throw new Error("it never fires");
  } catch (err) {
    const why = errorMessage(err);
    f.deny("spec.schedule", `"${schedule}" is not a valid cron expression (${why}); ${EXAMPLE}`);
  }
}
