import { createRequire } from "node:module";
import { launchChromium, type TestBrowser, WAIT_MS } from "@tether/testkit/browser";
import { bannerApiKey, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import type { AxeResults, Result } from "axe-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoPage, ensureDemoBundle } from "./helpers.js";

/** axe-core's browser build, evaluated in the page (over DevTools, which the page's CSP does not govern). */
const AXE_SOURCE = (createRequire(import.meta.url)("axe-core") as { source: string }).source;
const NAME = `demo-a11y-${process.pid}`;

const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 375, height: 667 },
] as const;
const SCHEMES = ["light", "dark"] as const;
/** Five axe runs over a full page in one test: CPU-bound, and the machine may be busy with other files. */
const AXE_TEST_TIMEOUT_MS = 90_000;

/** Runs axe on the whole page: every rule axe-core enables by default, and the WCAG 2.x A/AA tags. */
async function axe(page: Page): Promise<AxeResults> {
  if (!(await page.evaluate(() => "axe" in globalThis))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(() =>
    (globalThis as unknown as { axe: { run(context: Document, options: object): Promise<AxeResults> } }).axe.run(
      document,
      { resultTypes: ["violations"] },
    ),
  );
}

/** One line per violation and node, readable in a test failure. */
const describeViolations = (violations: Result[]) =>
  violations.flatMap((v) =>
    v.nodes.map((node) => `${v.id} (${v.impact}): ${node.target.join(" ")} — ${node.failureSummary}`),
  );

/** Nothing sticks out sideways: the page fits the viewport's width. */
const fitsWidth = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

describe("the demo page passes axe-core, on a desktop and a phone, light and dark", () => {
  let instance: TestInstance;
  let proxy: TestProxy;
  let chromium: TestBrowser;
  let apiKey: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    await ensureDemoBundle();
    // Embedded, with a generated key: the login form shows its notice too.
    [instance, chromium] = await Promise.all([
      startInstance({ TETHER_INSTANCE_ID: NAME, TETHER_PING_INTERVAL: "500ms", TETHER_PING_TIMEOUT: "500ms" }),
      launchChromium(),
    ]);
    proxy = await startProxy([instance.port]);
    apiKey = await bannerApiKey(NAME);
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await chromium?.close();
    await proxy?.close();
    await instance?.kill();
  });

  for (const viewport of VIEWPORTS) {
    for (const colorScheme of SCHEMES) {
      it(
        `${viewport.name} ${viewport.width}×${viewport.height}, ${colorScheme}: login form, connected with a job, reconnecting`,
        async () => {
          const context = await chromium.browser.newContext({
            viewport: { width: viewport.width, height: viewport.height },
            colorScheme,
          });
          contexts.push(context);
          const tab = await DemoPage.open(context, proxy.url);
          const check = async (view: string) => {
            const results = await axe(tab.page);
            expect(describeViolations(results.violations), `axe on ${view}`).toEqual([]);
            expect(await fitsWidth(tab.page), `${view} fits ${viewport.width} px`).toBe(true);
          };

          await tab.waitForLoginForm();
          expect(await tab.page.isVisible("#embedded-notice")).toBe(true);
          await check("the login form");
          // A wrong key: the error line too.
          await tab.login("not-the-key-0123456789");
          await tab.page.waitForFunction(() => document.getElementById("login-error")?.textContent !== "", null, {
            timeout: WAIT_MS,
          });
          await check("the login form with an error");

          await tab.login(apiKey);
          await tab.waitForState("connected");
          await tab.page.click("#run-job");
          await tab.waitForText("progress", "20/20 done");
          await tab.page.click(".log summary");
          await check("the connected session, a job done, the log open");

          proxy.refusing = true;
          proxy.cut();
          await tab.waitForState("reconnecting");
          // A retry pending long enough for axe to look at the countdown and its button.
          await tab.page.waitForFunction(
            () => {
              const at = (
                globalThis as unknown as { tetherClient: { stats(): { nextRetryAt?: number } } }
              ).tetherClient.stats().nextRetryAt;
              return at !== undefined && at - Date.now() > 2_000 && !document.getElementById("retry")?.hidden;
            },
            null,
            { timeout: WAIT_MS, polling: 50 },
          );
          await check("reconnecting, with a retry pending");
          proxy.refusing = false;
          // The pending retry may have fired meanwhile (and the button gone with it).
          await tab.page.evaluate(() => document.getElementById("retry-now")?.click());
          await tab.waitForState("connected");
          // The chart has a bar now.
          await tab.page.locator("#chart-bars rect").first().waitFor({ state: "attached", timeout: WAIT_MS });
          await check("connected again, with a reconnect in the chart");
          expect(tab.pageErrors).toEqual([]);
          await context.close();
        },
        AXE_TEST_TIMEOUT_MS,
      );
    }
  }

  it("keyboard: the skip link comes first, then the form in order, and focus is visible", async () => {
    const context = await chromium.newContext();
    contexts.push(context);
    const tab = await DemoPage.open(context, proxy.url);
    await tab.waitForLoginForm();
    // The page puts the focus in the key field; before it there is only the skip link.
    expect(await tab.page.evaluate(() => document.activeElement?.id)).toBe("api-key");
    const focused = () =>
      tab.page.evaluate(() => {
        const element = document.activeElement as HTMLElement;
        // Visible focus: an outline is drawn.
        const outline = getComputedStyle(element).outlineStyle;
        return `${element.id || element.className || element.tagName.toLowerCase()}${outline === "none" ? " (no outline)" : ""}`;
      });
    await tab.page.keyboard.press("Shift+Tab");
    const order = [await focused()];
    for (let i = 0; i < 3; i++) {
      await tab.page.keyboard.press("Tab");
      order.push(await focused());
    }
    expect(order).toEqual(["skip-link", "api-key", "login", "summary"]);
  });
});
