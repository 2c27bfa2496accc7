/**
 * Headless Chromium for the browser suites: the system's own (never a downloaded
 * one), the flags every suite launches it with, one browser per test file.
 */
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { freePort } from "./ports.js";

/** The system Chromium; never a downloaded one. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Browser tests may wait on the network and on real timers: generous, but bounded. */
export const WAIT_MS = 15_000;

/** One headless Chromium for one test file. */
export interface TestBrowser {
  readonly browser: Browser;
  /** A fresh context: its own cookies and storage, like a new browser profile. Closed by `closeContexts` or `close`. */
  newContext(): Promise<BrowserContext>;
  /** Closes every context `newContext` made so far (e.g. after each test, pass or fail). */
  closeContexts(): Promise<void>;
  /**
   * The browser's default context, reached over CDP without Playwright's default
   * overrides. Playwright emulates focus in the contexts it creates, which counts as
   * a visible capture of the page: Chromium then never hides it (a minimized window
   * stays "visible") and `Page.setWebLifecycleState {frozen}` does not freeze it.
   * Pages of this context can really be hidden and frozen. One per browser.
   */
  lifecycleContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Launches /usr/bin/chromium headless. Playwright gives every launch a new
 * temporary user-data-dir and removes it on close. With `lifecycle`, a DevTools
 * port on 127.0.0.1 lets `lifecycleContext()` attach a second, override-free connection.
 */
export async function launchChromium({ lifecycle = false } = {}): Promise<TestBrowser> {
  const debugPort = lifecycle ? await freePort() : undefined;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: debugPort === undefined ? CHROMIUM_ARGS : [...CHROMIUM_ARGS, `--remote-debugging-port=${debugPort}`],
  });
  let cdpBrowser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  return {
    browser,
    async newContext() {
      const context = await browser.newContext();
      contexts.push(context);
      return context;
    },
    async closeContexts() {
      for (const context of contexts.splice(0)) await context.close().catch(() => undefined);
    },
    async lifecycleContext() {
      if (debugPort === undefined)
        throw new Error("launchChromium({ lifecycle: true }) is needed for lifecycleContext()");
      cdpBrowser ??= await chromium.connectOverCDP(`http://127.0.0.1:${debugPort}`, { noDefaults: true });
      const context = cdpBrowser.contexts()[0];
      if (!context) throw new Error("the browser has no default context");
      return context;
    },
    async close() {
      await cdpBrowser?.close().catch(() => undefined);
      await browser.close();
    },
  };
}
