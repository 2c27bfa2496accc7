import { launchChromium, type TestBrowser, WAIT_MS } from "@tether/testkit/browser";
import { bannerApiKey, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import type { BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ERROR_MESSAGES, SESSION_END_MESSAGES } from "../../demo/messages.js";
import { DemoPage, ensureDemoBundle } from "./helpers.js";

const API_KEY = "browser-demo-ui-api-key-0123456789";
// A 1.5 s ping timeout: a page held half a second on a loaded full run must not lose its socket mid-assertion.
const ENV = { TETHER_WS_TOKEN_TTL: "1s", TETHER_PING_INTERVAL: "500ms", TETHER_PING_TIMEOUT: "1500ms" };
const STOPPED = "Stopped: its server instance went away — run it again.";
/** An error code as the SDK reports it (SESSION_EXPIRED, TRANSPORT_ERROR, …): never the page's words. */
const RAW_CODE = /\b[A-Z]+(_[A-Z]+)+\b/;

/** Runs in the page: what a person sees of `#id` (its text, white space as rendered, or "hidden"). */
const shown = (tab: DemoPage, id: string) =>
  tab.page.evaluate((id) => {
    const element = document.getElementById(id);
    return element?.checkVisibility() ? (element.textContent ?? "").replace(/\s+/g, " ").trim() : "hidden";
  }, id);

/** The text a person can read in the page's main area (a closed <details> log is not rendered). */
// biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point.
const mainText = (tab: DemoPage) => tab.page.evaluate(() => document.querySelector("main")?.innerText ?? "");

/**
 * Records, after every change of the badge, what the instance field says then
 * (a MutationObserver runs after the page's listener has finished its update).
 */
const watchBadge = (tab: DemoPage) =>
  tab.page.evaluate(() => {
    const seen: [string, string][] = [];
    Object.defineProperty(globalThis, "badgeSeen", { value: seen });
    const badge = document.getElementById("state") as HTMLElement;
    new MutationObserver(() =>
      seen.push([badge.dataset.state ?? "", document.getElementById("instance")?.textContent ?? ""]),
    ).observe(badge, { attributes: true, attributeFilter: ["data-state"] });
  });
const badgeSeen = (tab: DemoPage) =>
  tab.page.evaluate(() => (globalThis as unknown as { badgeSeen: [string, string][] }).badgeSeen);

/**
 * Waits until the client has a retry pending at least `ms` from now and the badge counts
 * down to it in whole seconds (its text may lag by one poll); returns when it fires (epoch ms).
 */
const waitForCountdown = async (tab: DemoPage, ms: number): Promise<number> => {
  const handle = await tab.page.waitForFunction(
    (ms) => {
      const client = (globalThis as unknown as { tetherClient: { stats(): { nextRetryAt?: number } } }).tetherClient;
      const at = client.stats().nextRetryAt;
      const left = at === undefined ? 0 : at - Date.now();
      const retry = document.getElementById("retry") as HTMLElement;
      const text = document.getElementById("retry-countdown")?.textContent ?? "";
      const seconds = Number(/^retrying in (\d+) s$/.exec(text)?.[1]);
      const counts = seconds >= Math.floor(left / 1000) && seconds <= Math.ceil(left / 1000) + 1;
      return left >= ms && !retry.hidden && counts ? at : undefined;
    },
    ms,
    { timeout: WAIT_MS, polling: 50 },
  );
  return (await handle.jsonValue()) as number;
};

describe("the demo page as an app: badge, retry, offline, messages", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let proxy: TestProxy;
  let chromium: TestBrowser;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium()]);
    instance = await startInstance({
      ...ENV,
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_INSTANCE_ID: `demo-ui-${process.pid}`,
    });
    proxy = await startProxy([instance.port]);
  });

  afterAll(async () => {
    await chromium?.close();
    await proxy?.close();
    await instance?.kill();
    await redis?.close();
  });
  // A test that fails halfway must not leave the next one behind a refusing proxy.
  afterEach(() => {
    proxy.refusing = false;
  });

  it("server unreachable: the instance is cleared, the badge counts down, and Retry now reconnects at once", async () => {
    const tab = await DemoPage.open(await chromium.newContext(), proxy.url);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    await tab.waitForInstance(`demo-ui-${process.pid}`);
    expect(await shown(tab, "retry")).toBe("hidden");
    await watchBadge(tab);

    proxy.refusing = true;
    proxy.cut();
    await tab.waitForState("reconnecting");
    // The countdown is the client's own next retry, in whole seconds.
    const retryAt = await waitForCountdown(tab, 3_000);
    expect(await shown(tab, "retry-now")).toBe("Retry now");
    expect(await tab.page.isDisabled("#run-job")).toBe(true);
    expect(await shown(tab, "run-job-reason")).toMatch(/^Not connected/);
    // The page says what is wrong in words; the raw codes are for the log.
    expect(await shown(tab, "status")).toMatch(/Reconnecting…$/);
    expect(await mainText(tab)).not.toMatch(RAW_CODE);

    proxy.refusing = false;
    await tab.page.click("#retry-now");
    await tab.waitForState("connected");
    // Connected well before the retry that was pending would have fired.
    expect(Date.now()).toBeLessThan(retryAt);
    await tab.waitForInstance(`demo-ui-${process.pid}`);
    expect(await shown(tab, "retry")).toBe("hidden");
    expect(await tab.page.isDisabled("#run-job")).toBe(false);

    // The instance never showed while the socket was gone.
    const seen = await badgeSeen(tab);
    expect(seen.map(([state]) => state)).toContain("reconnecting");
    for (const [state, shownInstance] of seen) if (state !== "connected") expect(shownInstance).toBe("—");

    // The figures: two connects, one disconnect, one reconnect time in the chart and its caption.
    await tab.page.waitForFunction(() => document.getElementById("count-connects")?.textContent === "2", null, {
      timeout: WAIT_MS,
    });
    expect(await shown(tab, "count-disconnects")).toBe("1");
    expect(await tab.page.locator("#chart-bars rect.bar").count()).toBe(1);
    expect(await shown(tab, "chart-caption")).toMatch(/^Time to reconnect, last 1 reconnect: median /);
    const sample = await tab.page.evaluate(
      () =>
        (globalThis as unknown as { tetherClient: { stats(): { reconnectTimesMs: number[] } } }).tetherClient.stats()
          .reconnectTimesMs,
    );
    expect(await tab.page.locator("#chart-rows td").allTextContents()).toEqual(["1", String(Math.round(sample[0]!))]);
    expect(tab.pageErrors).toEqual([]);
  });

  it("offline: Run job is disabled and says why, until the network and the connection are back", async () => {
    const context = await chromium.newContext();
    // A socket of the tab's own: Playwright's offline emulation reaches pages, not a SharedWorker.
    const tab = await DemoPage.open(context, `${instance.url}/?share=tab`);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    expect(await tab.page.isDisabled("#run-job")).toBe(false);
    expect(await shown(tab, "run-job-reason")).toBe("hidden");

    await context.setOffline(true);
    // At once, from the browser's own offline event: no need to wait for the socket to notice.
    await tab.page.waitForFunction(() => (document.getElementById("run-job") as HTMLButtonElement).disabled, null, {
      timeout: WAIT_MS,
      polling: 50,
    });
    expect(await shown(tab, "run-job-reason")).toBe("You are offline: a job can start once the network is back.");
    await tab.waitForState("reconnecting");
    expect(await shown(tab, "status")).toBe("You are offline. The page reconnects when the network is back.");

    await context.setOffline(false);
    await tab.waitForState("connected");
    await tab.page.waitForFunction(() => !(document.getElementById("run-job") as HTMLButtonElement).disabled, null, {
      timeout: WAIT_MS,
      polling: 50,
    });
    await tab.page.click("#run-job");
    await tab.waitForText("progress", "20/20 done");
    expect(await shown(tab, "job-status")).toBe("Done.");
    expect(tab.pageErrors).toEqual([]);
  });

  it("a session ended while the tab was cut off: the login form says so in words, not SESSION_EXPIRED", async () => {
    const context = await chromium.newContext();
    const cutOff = await DemoPage.open(context, proxy.url);
    await cutOff.login(API_KEY);
    await cutOff.waitForState("connected");
    const other = await DemoPage.open(context, instance.url);
    await other.waitForState("connected");

    proxy.refusing = true;
    proxy.cut();
    await cutOff.waitForState("reconnecting");
    await other.page.click("#logout");
    await other.waitForLoginForm();
    expect(await shown(other, "login-notice")).toBe("You are logged out.");
    proxy.refusing = false;
    await cutOff.page.evaluate(() => document.getElementById("retry-now")?.click());

    await cutOff.waitForState("unauthenticated");
    await cutOff.waitForLoginForm();
    const record = await cutOff.record();
    // It was cut off when session:ended went out: its next handshake told it.
    expect(record.ended).toEqual([]);
    expect(record.errors.some((error) => /^SESSION_(EXPIRED|REQUIRED)/.test(error))).toBe(true);
    expect(await shown(cutOff, "login-notice")).toBe(ERROR_MESSAGES.SESSION_EXPIRED);
    expect(await shown(cutOff, "status")).toBe(ERROR_MESSAGES.SESSION_EXPIRED);
    expect(await mainText(cutOff)).not.toMatch(RAW_CODE);
    // The raw detail is still there, in the collapsed log.
    expect(await cutOff.page.locator("#log").textContent()).toMatch(/SESSION_(EXPIRED|REQUIRED)/);
    // Not embedded: no word about restarts.
    expect(await shown(cutOff, "embedded-notice")).toBe("hidden");
    expect(cutOff.pageErrors).toEqual([]);
  });

  it("a logout in another tab: this tab's login form says it was logged out", async () => {
    const context = await chromium.newContext();
    const first = await DemoPage.open(context, instance.url);
    await first.login(API_KEY);
    await first.waitForState("connected");
    const second = await DemoPage.open(context, instance.url);
    await second.waitForState("connected");
    await second.page.click("#logout");
    await first.waitForLoginForm();
    expect(await shown(first, "login-notice")).toBe(SESSION_END_MESSAGES.logout);
    expect(await mainText(first)).not.toMatch(RAW_CODE);
  });

  it("the shared-socket panel: the worker's socket and how many tabs use it, and links to another tab and to ?share=tab", async () => {
    const context = await chromium.newContext();
    const tab = await DemoPage.open(context, instance.url);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    expect(await shown(tab, "share-mode")).toBe("worker");
    expect(await shown(tab, "share-tabs")).toBe("1 tab on this socket");
    const second = await DemoPage.open(context, instance.url);
    await second.waitForState("connected");
    await tab.waitForText("share-tabs", "2 tabs on this socket");
    expect(await shown(tab, "share-explain")).toBe("A shared worker holds one socket for this site; 2 tabs use it.");
    await second.close();
    await tab.waitForText("share-tabs", "1 tab on this socket");
    expect(await tab.page.getAttribute("#open-tab", "target")).toBe("_blank");
    expect(await shown(tab, "share-toggle")).toBe("Use a socket per tab");
    await tab.page.click("#share-toggle");
    await tab.page.waitForURL(/\?share=tab$/);
    await tab.waitForState("connected");
    expect(await shown(tab, "share-explain")).toBe("This tab has a socket of its own, as asked (?share=tab).");
    expect(await tab.page.getAttribute("#open-tab", "href")).toBe("./?share=tab");
    expect(await shown(tab, "share-toggle")).toBe("Share one socket across tabs");
    expect(tab.pageErrors).toEqual([]);
  });
});

describe("the job card when the instance running the job dies", () => {
  let redis: TestRedis;
  let doomed: TestInstance;
  let successor: TestInstance | undefined;
  let proxy: TestProxy;
  let chromium: TestBrowser;
  let context: BrowserContext | undefined;
  const DOOMED = `demo-job-a-${process.pid}`;
  const SUCCESSOR = `demo-job-b-${process.pid}`;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium()]);
    doomed = await startInstance({ ...ENV, REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_INSTANCE_ID: DOOMED });
    proxy = await startProxy([doomed.port]);
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await proxy?.close();
    await Promise.all([doomed?.kill(), successor?.kill()]);
    await redis?.close();
  });

  it("kill -9 mid-job, another instance behind the same URL: the card says the job stopped, and a new one runs", async () => {
    context = await chromium.newContext();
    const tab = await DemoPage.open(context, proxy.url);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    await tab.page.click("#run-job");
    await tab.page.waitForFunction(() => Number(document.querySelector("progress")?.value) >= 2, null, {
      timeout: WAIT_MS,
      polling: 50,
    });
    expect(await shown(tab, "job-status")).toBe(`Running on instance ${DOOMED}.`);

    await doomed.kill();
    await tab.waitForState("reconnecting");
    successor = await startInstance({
      ...ENV,
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_INSTANCE_ID: SUCCESSOR,
    });
    proxy.backends = [successor.port];
    // As a person would, rather than wait out a grown backoff.
    await tab.page.evaluate(() => document.getElementById("retry-now")?.click());
    await tab.waitForInstance(SUCCESSOR);

    await tab.page.waitForFunction(
      () => (document.getElementById("job") as HTMLElement).dataset.job === "stopped",
      null,
      { timeout: WAIT_MS, polling: 50 },
    );
    expect(await shown(tab, "job-status")).toBe(STOPPED);
    const steps = Number(/^(\d+)\/20$/.exec(await shown(tab, "progress"))?.[1]);
    expect(steps).toBeGreaterThanOrEqual(2);
    expect(steps).toBeLessThan(20);
    // The session lived on in Redis: no login.
    expect(await tab.loginFormShown()).toBe(false);
    expect(tab.requestCount("/api/auth/login")).toBe(1);

    // Run it again: it runs on the new instance, to the end.
    await tab.page.click("#run-job");
    await tab.waitForText("progress", "20/20 done");
    expect(await shown(tab, "job-status")).toBe("Done.");
    expect(tab.pageErrors).toEqual([]);
  });
});

describe("an embedded server (no REDIS_URL, a key generated per process)", () => {
  let instance: TestInstance;
  let chromium: TestBrowser;
  let context: BrowserContext | undefined;
  const NAME = `demo-embedded-${process.pid}`;

  beforeAll(async () => {
    await ensureDemoBundle();
    [instance, chromium] = await Promise.all([startInstance({ ...ENV, TETHER_INSTANCE_ID: NAME }), launchChromium()]);
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await instance?.kill();
  });

  it("the login form warns that a restart ends sessions and changes the key; after one, it says the session ended", async () => {
    context = await chromium.newContext();
    const tab = await DemoPage.open(context, instance.url);
    await tab.waitForLoginForm();
    expect(await shown(tab, "embedded-notice")).toMatch(
      /embedded mode.* a restart of the server ends every session and generates a new API key, printed in its banner\.$/,
    );

    const firstKey = await bannerApiKey(NAME);
    await tab.login(firstKey);
    await tab.waitForState("connected");
    expect(await shown(tab, "store")).toBe("In this process (embedded mode)");

    await instance.kill();
    await tab.waitForState("reconnecting");
    await instance.restart();
    const secondKey = await bannerApiKey(NAME, { not: firstKey });
    await tab.page.evaluate(() => document.getElementById("retry-now")?.click());

    // The restart took the session with it: the form, why, and the notice that explains it.
    await tab.waitForState("unauthenticated");
    await tab.waitForLoginForm();
    expect(await shown(tab, "login-notice")).toBe(ERROR_MESSAGES.SESSION_EXPIRED);
    expect(await shown(tab, "embedded-notice")).toMatch(/generates a new API key/);

    await tab.login(firstKey);
    await tab.waitForText("login-error", ERROR_MESSAGES.INVALID_CREDENTIALS ?? "");
    await tab.login(secondKey);
    await tab.waitForState("connected");
    expect(await tab.loginFormShown()).toBe(false);
    expect(tab.pageErrors).toEqual([]);
  });
});
