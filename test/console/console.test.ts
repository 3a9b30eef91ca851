// The web console end to end, in a real headless Chromium against the live platform: the
// gateway (serving the console built for this run under /ui) with the real operator and real
// sandbox and agent runtime processes behind the fake pods, examples/platform applied into a
// test namespace. Each step is a subtest that leaves a screenshot when it fails; every page
// passes an axe-core check with no serious violation; nothing leaves loopback. Lists are read
// from the gateway a page at a time (a few hundred inert objects prove it), and a caller who
// may only look finds every control it may not use disabled, with the reason.
//
// AGENTRY_UPDATE_DOCS=1 also writes the fleet page's screenshot the README shows
// (docs/images/console-fleet.png).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { buildConsole } from "../../hack/console.ts";
import { kubectl, testNamespace, waitFor } from "../harness/cluster.ts";
import { grant } from "../harness/rbac.ts";
import { examplesYaml, startExampleGit } from "../harness/platform.ts";
import { repoRoot } from "../harness/paths.ts";
import { ADMIN, ADMIN_TOKEN } from "../gateway/harness.ts";
import { startDataPlane } from "../gateway/dataplane-env.ts";
import { browserMissing, checkAccessibility, startBrowser, step } from "./browser.ts";

const VIEWER_TOKEN = "console-viewer-token";
const VIEWER = { user: "console-viewer", groups: ["console-viewers"], via: "token" as const };
const FLEET = "team-fleet";
const UI_TIMEOUT = 60_000;

/** Rows per page of the console's lists, and how many objects prove a list pages. */
const PAGE = 50;
const BULK = 320;

/** May pin and unpin fleets (bound to the viewer for one step). */
const scalerRole = (ns: string) =>
  grant(ns, "console-scaler", { user: VIEWER.user }, [{ resources: ["sandboxfleets"], verbs: ["patch"] }]);

/** May read the agentry objects of the namespace, and change nothing. */
const viewerRole = (ns: string) =>
  grant(ns, "console-viewer", { user: VIEWER.user }, [
    {
      resources: ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"],
      verbs: ["get", "list", "watch"],
    },
  ]);

async function apply(ns: string, text: string): Promise<void> {
  const r = await kubectl(["apply", "-n", ns, "-f", "-"], text);
  assert.equal(r.code, 0, r.stderr);
}

async function signIn(page: Page, base: string, token: string, user: string): Promise<void> {
  await page.goto(`${base}/ui/`);
  await page.getByLabel("Bearer token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("user").filter({ hasText: user }).waitFor({ timeout: UI_TIMEOUT });
}

describe("web console", () => {
  it("works in a real browser against the live platform", async (t) => {
    const missing = browserMissing();
    if (missing) {
      if (process.env.CI === "true") assert.fail(missing);
      return t.skip(missing);
    }
    const built = await mkdtemp(join(tmpdir(), "agentry-console-"));
    t.after(() => rm(built, { recursive: true, force: true }));
    const consoleDir = (await buildConsole(built)).dir;
    const { ns, gw } = await startDataPlane(t, { consoleDir, tokens: { [VIEWER_TOKEN]: VIEWER } });
    const git = await startExampleGit();
    t.after(() => git.stop());
    await apply(ns, viewerRole(ns));
    await apply(ns, examplesYaml(git.url, "platform"));
    // The example fleet's workspaces placed on its sandboxes (real runtime processes).
    await waitFor(
      "the example workspaces to be placed",
      async () => {
        const r = await kubectl([
          "get",
          "workspaces",
          "-n",
          ns,
          "-o",
          "jsonpath={.items[*].status.sandboxPod}",
        ]);
        return r.code === 0 && r.stdout.trim().split(/\s+/).filter(Boolean).length >= 3;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );

    const browser = await startBrowser(t);
    const page = await browser.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    const base = gw.url;

    await step(t, "sign-in refuses a bad token with the gateway's reason", page, async () => {
      await page.goto(`${base}/ui/`);
      await page.waitForURL(/\/ui\/signin$/);
      await checkAccessibility(page, "the sign-in page");
      await page.getByLabel("Bearer token").fill("not-a-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page
        .getByRole("alert")
        .filter({ hasText: /401|Unauthorized|token/i })
        .waitFor();
      assert.doesNotMatch(page.url(), /token/, "the token never goes into the URL");
    });

    await step(t, "sign in shows who the gateway says you are", page, async () => {
      await signIn(page, base, ADMIN_TOKEN, ADMIN.user);
      const stored = await page.evaluate("[sessionStorage.length, localStorage.length, document.cookie]");
      assert.deepEqual(stored, [1, 0, ""], "the token is kept in sessionStorage only");
    });

    await step(t, "overview lists the namespace and the kinds", page, async () => {
      await page
        .getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Overview" })
        .click();
      await page.getByRole("region", { name: "Namespaces" }).getByRole("link", { name: ns }).waitFor();
      await page.getByRole("heading", { name: "SandboxFleets" }).waitFor();
      await page
        .getByRole("table", { name: "Warning events of the namespaces you see, newest first" })
        .waitFor();
      await checkAccessibility(page, "the overview");
      // Keyboard: the skip link comes first, and focus moved by Tab is visible.
      const first = "document.querySelector('a[href], button, input, select, textarea')?.textContent";
      assert.equal(await page.evaluate(first), "Skip to content");
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle"), "solid");
    });

    await step(t, "the example fleet shows its sandboxes and their workspaces", page, async () => {
      await page.goto(`${base}/ui/n/${ns}/fleets`);
      const permissions = page.waitForResponse((r) => r.url().includes(`/v1/namespaces/${ns}/permissions?`));
      await page.getByRole("link", { name: FLEET }).click();
      await page.getByRole("heading", { name: `Fleet ${FLEET}` }).waitFor();
      const grid = page.getByRole("list", { name: `Sandboxes of ${FLEET}` });
      await waitFor("two sandboxes with their load", async () => (await grid.locator("meter").count()) >= 4, {
        timeoutMs: UI_TIMEOUT,
      });
      for (const ws of ["alice-app", "alice-docs", "bob-service"])
        await grid.getByRole("link", { name: ws }).waitFor();
      // The admin may scale: the gateway says so, and the controls carry no reason against them.
      const answer = (await (await permissions).json()) as { actions: { scaleFleet?: { allowed: boolean } } };
      assert.equal(answer.actions.scaleFleet?.allowed, true);
      assert.equal(await page.getByRole("button", { name: "Pin size" }).isEnabled(), true);
      assert.equal(await page.getByTestId("scale-why").count(), 0);
      await checkAccessibility(page, "the fleet page");
      if (process.env.AGENTRY_UPDATE_DOCS === "1")
        await page.screenshot({ path: join(repoRoot, "docs", "images", "console-fleet.png") });
      // Dark theme (from the system's preference) and a narrow window stay readable.
      await page.emulateMedia({ colorScheme: "dark" });
      await checkAccessibility(page, "the fleet page, dark");
      await page.setViewportSize({ width: 390, height: 800 });
      const overflow = await page.evaluate<number>(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px on a narrow window`);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.emulateMedia({ colorScheme: "light" });
    });

    await step(t, "create a workspace, upload a file, run a command", page, async () => {
      await page
        .getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Workspaces" })
        .click();
      await page.getByRole("heading", { name: "Workspaces" }).waitFor();
      await checkAccessibility(page, "the workspaces page");
      await page.getByLabel("Name", { exact: true }).fill("from-console");
      await page.getByRole("combobox", { name: /^Fleet/ }).selectOption(FLEET);
      await page.getByLabel("Owner (optional)").fill("carol");
      await page.getByRole("button", { name: "Create workspace" }).click();
      await page.getByRole("heading", { name: "Workspace from-console" }).waitFor();
      // Placed: the live stream brings the sandbox pod, and the file browser opens.
      await page.getByRole("table", { name: "Files in /" }).waitFor({ timeout: 120_000 });
      await checkAccessibility(page, "the workspace page");

      await page.getByLabel("Upload to /").setInputFiles({
        name: "notes.txt",
        mimeType: "text/plain",
        buffer: Buffer.from("written by the console test\n"),
      });
      await page.getByRole("button", { name: "Upload", exact: true }).click();
      await page
        .getByRole("table", { name: "Files in /" })
        .getByRole("cell", { name: "notes.txt", exact: true })
        .waitFor();
      await page.getByRole("button", { name: "View notes.txt" }).click();
      await page.getByText("written by the console test").waitFor();

      await page.getByRole("textbox", { name: /^Command/ }).fill("echo hello");
      await page.getByRole("button", { name: "Run", exact: true }).click();
      await page.getByTestId("exec-exit").filter({ hasText: "exit code 0" }).waitFor();
      assert.equal(await page.getByTestId("exec-output").textContent(), "hello\n");
      await page.getByRole("textbox", { name: /^Command/ }).fill("echo oops >&2; exit 3");
      await page.getByRole("button", { name: "Run", exact: true }).click();
      await page.getByTestId("exec-exit").filter({ hasText: "exit code 3" }).waitFor();
      assert.equal(await page.getByTestId("exec-output").textContent(), "oops\n");
    });

    await step(t, "a change made with kubectl appears without a reload", page, async () => {
      await page
        .getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Workspaces" })
        .click();
      const table = page.getByRole("table", { name: `Workspaces in ${ns}` });
      await table.getByRole("link", { name: "from-console" }).waitFor();
      // A mark on the window: a reload would lose it.
      await page.evaluate("window.loadedOnce = true");
      await apply(
        ns,
        `{"apiVersion":"agentry.dev/v1alpha1","kind":"Workspace","metadata":{"name":"from-kubectl"},"spec":{"fleetRef":{"name":"${FLEET}"},"ownerId":"dave"}}`,
      );
      await table.getByRole("link", { name: "from-kubectl" }).waitFor();
      await table
        .getByRole("row", { name: /from-kubectl.*Placed|from-kubectl.*Ready/ })
        .waitFor({ timeout: 120_000 });
      assert.equal(await page.evaluate("window.loadedOnce"), true, "the page was not reloaded");
    });

    await step(t, "agents and pipelines pages", page, async () => {
      await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Agents" }).click();
      await page
        .getByRole("table", { name: `AgentRuntimes in ${ns}` })
        .getByRole("link", { name: "coder" })
        .waitFor();
      await checkAccessibility(page, "the agents page");
      // An agent's page shows its Kubernetes Events. The operator records none on the happy
      // path (the status tells it), so the test records one, as kubectl would.
      const now = new Date().toISOString();
      await apply(
        ns,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Event",
          metadata: { name: "coder.console-test" },
          involvedObject: {
            apiVersion: "agentry.dev/v1alpha1",
            kind: "AgentRuntime",
            name: "coder",
            namespace: ns,
          },
          reason: "ConsoleTest",
          message: "recorded by the console test",
          type: "Normal",
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: "console-test" },
        }),
      );
      await page
        .getByRole("table", { name: `AgentRuntimes in ${ns}` })
        .getByRole("link", { name: "coder" })
        .click();
      await page
        .getByRole("table", { name: "Events of AgentRuntime coder, newest first" })
        .getByRole("cell", { name: "ConsoleTest", exact: true })
        .first()
        .waitFor();
      await checkAccessibility(page, "an agent's page");
      await page
        .getByRole("navigation", { name: "Sections" })
        .getByRole("link", { name: "Pipelines" })
        .click();
      await page
        .getByRole("table", { name: `Pipelines in ${ns}` })
        .getByRole("row")
        .nth(1)
        .waitFor();
      await checkAccessibility(page, "the pipelines page");
    });

    await step(t, "a list past a few hundred rows is read page by page", page, async () => {
      // Inert objects in a namespace no operator watches: only the list is exercised.
      const bulk = await testNamespace(t);
      const names = Array.from({ length: BULK }, (_, i) => `agent-${String(i).padStart(3, "0")}`);
      const created = await kubectl(
        ["create", "-n", bulk, "-f", "-", "--request-timeout=120s"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "List",
          items: names.map((name) => ({
            apiVersion: "agentry.dev/v1alpha1",
            kind: "AgentRuntime",
            metadata: { name },
            spec: { image: "registry.example/agent:1" },
          })),
        }),
      );
      assert.equal(created.code, 0, created.stderr);
      const reads: URL[] = [];
      const listPath = `/v1/namespaces/${bulk}/agentruntimes`;
      page.on("request", (r) => {
        const u = new URL(r.url());
        if (u.pathname === listPath) reads.push(u);
      });
      await page.goto(`${base}/ui/n/${bulk}/agents`);
      const table = page.getByRole("table", { name: `AgentRuntimes in ${bulk}` });
      const pager = page.getByRole("navigation", { name: `AgentRuntimes in ${bulk} pages` });
      const rows = table.getByRole("row");
      const pages = Math.ceil(BULK / PAGE);
      await pager.getByText(`Page 1 of ${pages} (${BULK} rows)`).waitFor();
      assert.equal(await rows.count(), PAGE + 1, "one page of rows and the header");
      await table.getByRole("link", { name: "agent-000", exact: true }).waitFor();
      await checkAccessibility(page, "a paged list");

      await pager.getByRole("button", { name: "Next" }).click();
      await pager.getByText(`Page 2 of ${pages}`).waitFor();
      await table.getByRole("link", { name: names[PAGE]!, exact: true }).waitFor();
      assert.equal(await rows.count(), PAGE + 1);
      assert.equal(await table.getByRole("link", { name: "agent-000", exact: true }).count(), 0);
      // A change to a row of the page shown arrives live: a deleted object leaves it.
      const gone = names[PAGE + 1]!;
      const deleted = await kubectl(["delete", "agentruntime", gone, "-n", bulk, "--wait=false"]);
      assert.equal(deleted.code, 0, deleted.stderr);
      await table.getByRole("link", { name: gone, exact: true }).waitFor({ state: "detached" });
      await pager.getByRole("button", { name: "Previous" }).click();
      await pager.getByText("Page 1 of").waitFor();
      await table.getByRole("link", { name: "agent-000", exact: true }).waitFor();

      // Every read of the list was one page, asked of the server; the next page by its token.
      assert.ok(reads.length >= 3, `list reads: ${reads.map(String).join(", ")}`);
      for (const u of reads) assert.equal(u.searchParams.get("limit"), String(PAGE), u.toString());
      assert.ok(
        reads.some((u) => u.searchParams.get("continue")),
        "the second page is read with the first page's continue token",
      );
    });

    const viewer = await browser.newPage();
    viewer.setDefaultTimeout(UI_TIMEOUT);
    await step(t, "a caller sees why the controls it may not use are disabled", viewer, async () => {
      await signIn(viewer, base, VIEWER_TOKEN, VIEWER.user);
      const disabled = async (button: Locator, why: string, reason: RegExp) => {
        await viewer.getByTestId(why).waitFor();
        assert.equal(await button.isDisabled(), true, `${why}: the control is disabled`);
        assert.match((await viewer.getByTestId(why).textContent()) ?? "", reason);
        assert.equal(await button.getAttribute("aria-describedby"), why);
      };
      const reason = (verb: string) => new RegExp(`${VIEWER.user} may not ${verb}`);
      await viewer.goto(`${base}/ui/n/${ns}/fleets/${FLEET}`);
      await viewer.getByRole("heading", { name: `Fleet ${FLEET}` }).waitFor();
      await disabled(
        viewer.getByRole("button", { name: "Pin size" }),
        "scale-why",
        reason("patch sandboxfleets"),
      );
      assert.equal(await viewer.getByRole("button", { name: "Unpin" }).isDisabled(), true);
      await checkAccessibility(viewer, "the fleet page of a caller who may not scale");

      await viewer.goto(`${base}/ui/n/${ns}/workspaces/alice-app`);
      await viewer.getByRole("heading", { name: "Workspace alice-app" }).waitFor();
      await disabled(
        viewer.getByRole("button", { name: "Suspend" }),
        "suspend-why",
        reason("patch workspaces"),
      );
      await disabled(
        viewer.getByRole("button", { name: "Upload", exact: true }),
        "write-files-why",
        reason("update workspaces/files"),
      );
      await disabled(
        viewer.getByRole("button", { name: "Run", exact: true }),
        "exec-why",
        reason("create workspaces/exec"),
      );
      await viewer.getByTestId("read-files-why").waitFor();
      assert.equal(await viewer.getByRole("table", { name: "Files in /" }).count(), 0, "no files are read");
      await checkAccessibility(viewer, "the workspace page of a caller who may only look");

      await viewer.goto(`${base}/ui/n/${ns}/agents/coder`);
      await viewer.getByRole("heading", { name: "Agent coder" }).waitFor();
      await disabled(
        viewer.getByRole("button", { name: "Send" }),
        "task-why",
        reason("create agentruntimes/tasks"),
      );

      await viewer.goto(`${base}/ui/n/${ns}/workspaces`);
      await disabled(
        viewer.getByRole("button", { name: "Create workspace" }),
        "create-why",
        reason("create workspaces"),
      );
    });

    await step(t, "a denied action shows the 403 reason", viewer, async () => {
      // Allowed when the page is read, refused by the time the button is pressed.
      await apply(ns, scalerRole(ns));
      const may = async () =>
        (
          await kubectl([
            "auth",
            "can-i",
            "patch",
            "sandboxfleets.agentry.dev",
            "-n",
            ns,
            "--as",
            VIEWER.user,
          ])
        ).code === 0;
      await waitFor("the viewer to be allowed to scale", may, { timeoutMs: UI_TIMEOUT });
      await viewer.goto(`${base}/ui/n/${ns}/fleets/${FLEET}`);
      const pin = viewer.getByRole("button", { name: "Pin size" });
      await waitFor("Pin size enabled", async () => !(await pin.isDisabled()), { timeoutMs: UI_TIMEOUT });
      assert.equal(await viewer.getByTestId("scale-why").count(), 0);
      const revoked = await kubectl(["delete", "rolebinding", "console-scaler", "-n", ns]);
      assert.equal(revoked.code, 0, revoked.stderr);
      await waitFor("the viewer's scaling to be revoked", async () => !(await may()), {
        timeoutMs: UI_TIMEOUT,
      });
      await viewer.getByLabel("Pinned size").fill("3");
      await pin.click();
      const alert = viewer.getByRole("alert").filter({ hasText: /cannot patch/i });
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? "", /console-viewer.*patch|patch.*console-viewer/i);
      // The console asks again: the control is now disabled, saying why.
      await viewer.getByTestId("scale-why").waitFor();
      assert.equal(await pin.isDisabled(), true);
      // Still signed in: a 403 is shown where it happened, only a 401 ends the session.
      await viewer.getByTestId("user").filter({ hasText: VIEWER.user }).waitFor();
    });

    assert.deepEqual(browser.offLoopback, [], "requests off loopback");
    assert.deepEqual(browser.pageErrors, [], "page errors and Content-Security-Policy violations");
  });
});
