import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkSchedule, isTimeZone } from "./schedule.ts";
import { Findings } from "./types.ts";

describe("checkSchedule", () => {
  const cases: { schedule: string; tz?: string; deny?: RegExp }[] = [
    { schedule: "" },
    { schedule: "@once" },
    { schedule: "0 2 * * *" },
    { schedule: "0 2 * * *", tz: "Europe/Paris" },
    { schedule: "*/15 9-17 * JAN-MAR MON-FRI", tz: "America/New_York" },
    { schedule: "0 0 1 1 ?" },
    { schedule: "@daily", tz: "Etc/UTC" },
    { schedule: "@midnight" },
    { schedule: "@every 1h30m" },
    {
      schedule: "0 2 * * *",
      tz: "Mars/Olympus",
      deny: /spec\.timeZone: "Mars\/Olympus" is not an IANA time zone/,
    },
    { schedule: "0 2 * * *", tz: "Local", deny: /spec\.timeZone/ },
    { schedule: "61 * * * *", deny: /spec\.schedule: "61 \* \* \* \*" is not a valid cron expression.*0-59/ },
    { schedule: "0 25 * * *", deny: /expected range 0-23/ },
    { schedule: "0 0 31 2 *", deny: /not a valid cron expression/ },
    { schedule: "* * * * * *", deny: /has 6 fields/ },
    { schedule: "0 2 L * *", deny: /day-of-month field "L".*not allowed/ },
    { schedule: "H 2 * * *", deny: /minute field "H"/ },
    { schedule: "0 2 * * 1#2", deny: /day-of-week field/ },
    { schedule: "@fortnightly", deny: /not a known macro/ },
    { schedule: "@every 0s", deny: /positive duration/ },
  ];
  for (const c of cases)
    it(`"${c.schedule}"${c.tz ? ` in ${c.tz}` : ""} → ${c.deny ? "deny" : "allow"}`, () => {
      const f = new Findings();
      checkSchedule(f, c.schedule, c.tz);
      const v = f.verdict();
      assert.equal(v.allowed, !c.deny, v.message);
      if (c.deny) assert.match(v.message, c.deny);
    });

  it("knows IANA zones and rejects others", () => {
    assert.equal(isTimeZone("Asia/Tokyo"), true);
    assert.equal(isTimeZone("Nowhere/Land"), false);
  });
});
