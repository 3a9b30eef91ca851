// A real headless Chromium for the console tests: Debian's `chromium` driven by playwright-core
// (no browser download), with a fresh profile, nothing of its own going to the network, and
// every request the pages make checked to stay on loopback. Helpers: a step that saves a
// screenshot when it fails, and an axe-core check of the page as it stands.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { repoRoot } from "../harness/paths.ts";

export const CHROMIUM = process.env.AGENTRY_CHROMIUM ?? "/usr/bin/chromium";

/** Where failing steps leave their screenshots (kept out of git, under .tmp/). */
export const SHOTS_DIR = join(repoRoot, ".tmp", "test", "console");

const ARGS = [
  "--headless",
  "--no-sandbox", // the tests run as root
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

type After = { after: (fn: () => Promise<void>) => void };

export interface Browser {
  context: BrowserContext;
  /** Requests that were not for loopback (and were refused). */
  offLoopback: string[];
  /** Content-Security-Policy violations and uncaught page errors. */
  pageErrors: string[];
  newPage(): Promise<Page>;
}

const isLoopback = (url: string) => {
  const u = new URL(url);
  if (u.protocol === "data:" || u.protocol === "blob:") return true;
  return u.hostname === "127.0.0.1" || u.hostname === "[::1]" || u.hostname === "localhost";
};

/** Whether this machine has the browser (else the suite is skipped, or fails under CI=true). */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`;
}

export async function startBrowser(t: After): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "agentry-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    serviceWorkers: "block",
  });
  t.after(async () => {
    await context.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true });
  });
  const offLoopback: string[] = [];
  const pageErrors: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    offLoopback.push(url);
    return route.abort("blockedbyclient");
  });
  const watchPage = (page: Page) => {
    page.on("pageerror", (err) => pageErrors.push(`page error: ${err.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  };
  context.pages().forEach(watchPage);
  context.on("page", watchPage);
  return {
    context,
    offLoopback,
    pageErrors,
    newPage: async () => context.newPage(),
  };
}

const sanitize = (s: string) =>
  s
    .replace(/[^a-z0-9]+/gi, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 80);

/**
 * Runs one step of a scenario as a subtest; when it fails, the page's screenshot is saved
 * to SHOTS_DIR (named after the step) and its path reported with the failure.
 */
export async function step(
  t: { test: (name: string, fn: () => Promise<void>) => Promise<void>; name: string },
  name: string,
  page: Page,
  fn: () => Promise<void>,
): Promise<void> {
  await t.test(name, async () => {
    try {
      await fn();
    } catch (err) {
      await mkdir(SHOTS_DIR, { recursive: true });
      const file = join(SHOTS_DIR, `${sanitize(t.name)}--${sanitize(name)}.png`);
      const saved = await page
        .screenshot({ path: file, fullPage: true })
        .then(() => `; screenshot: ${file}`)
        .catch((e: unknown) => `; no screenshot: ${String(e)}`);
      if (err instanceof Error) err.message += saved;
      throw err;
    }
  });
}

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * axe-core on the page as it stands (WCAG 2.x A and AA rules and best practices): fails on
 * any violation of impact serious or critical, listing them.
 */
export async function checkAccessibility(page: Page, what: string): Promise<void> {
  axeSource ??= await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
  // Evaluated through the DevTools protocol, so the page's Content-Security-Policy (which
  // allows no injected script) stays in force for everything else.
  if (!(await page.evaluate("typeof window.axe !== 'undefined'"))) await page.evaluate(axeSource);
  const violations = await page.evaluate<AxeViolation[]>(
    `window.axe.run(document, { resultTypes: ["violations"], runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }).then(r => r.violations)`,
  );
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    serious.map(
      (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(", ")})`,
    ),
    [],
    `accessibility of ${what}`,
  );
}
