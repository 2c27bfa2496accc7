import { launchChromium, type TestBrowser } from "@tether/testkit/browser";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor } from "@tether/testkit/wait";
import type { CDPSession } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoPage, ensureDemoBundle, range, stepsOf } from "./helpers.js";

const API_KEY = "browser-network-api-key-0123456789";
const PING_INTERVAL_MS = 500;
/**
 * Long enough for a busy box: the shared-socket case asserts that the SharedWorker's socket
 * stays up while the page is frozen, and a worker whose pong came 0.5 s late on a loaded full
 * run was taken for a lost one (one CI run out of thirteen). The freezes scale with it.
 */
const PING_TIMEOUT_MS = 1_500;
/** A job that outlasts the outage: 40 steps, 100 ms apart. */
const STEPS = 40;
const STEP_INTERVAL_MS = 100;

/**
 * Backgrounded: the window is minimized, so the page is hidden; then the browser freezes
 * it, well past what the server tolerates without a pong (the time is the scenario);
 * then it is thawed and shown again.
 */
async function backgroundAndFreeze(tab: DemoPage, cdp: CDPSession): Promise<void> {
  const { windowId } = await cdp.send("Browser.getWindowForTarget");
  await cdp.send("Browser.setWindowBounds", { windowId, bounds: { windowState: "minimized" } });
  await tab.page.waitForFunction(() => document.visibilityState === "hidden", null, { polling: 50 });
  await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  await idleFor(2 * (PING_INTERVAL_MS + PING_TIMEOUT_MS) + 500);
  await cdp.send("Page.setWebLifecycleState", { state: "active" });
  await cdp.send("Browser.setWindowBounds", { windowId, bounds: { windowState: "normal" } });
}

describe("a tab that loses its network or gets frozen", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let chromium: TestBrowser;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium({ lifecycle: true })]);
    instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_WS_TOKEN_TTL: "1s",
      TETHER_PING_INTERVAL: `${PING_INTERVAL_MS}ms`,
      TETHER_PING_TIMEOUT: `${PING_TIMEOUT_MS}ms`,
    });
  });

  afterAll(async () => {
    await chromium?.close();
    await instance?.kill();
    await redis?.close();
  });

  it("offline for several ping intervals: reconnecting, then connected, with every job event exactly once", async () => {
    const context = await chromium.newContext();
    // A socket of the tab's own: Playwright's offline emulation reaches pages, not a SharedWorker.
    const tab = await DemoPage.open(context, `${instance.url}/?share=tab`);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    const jobId = await tab.startJob(STEPS, STEP_INTERVAL_MS);
    await tab.waitForProgress(jobId, 3);

    await context.setOffline(true);
    await tab.waitForState("reconnecting");
    // The outage itself is the scenario: four ping intervals without a network.
    await idleFor(4 * PING_INTERVAL_MS);
    const beforeOnline = stepsOf(await tab.record(), jobId).length;
    await context.setOffline(false);

    await tab.waitForJobDone(jobId);
    await tab.waitForState("connected");
    const record = await tab.record();
    expect(stepsOf(record, jobId)).toEqual(range(STEPS));
    expect(record.done.filter((done) => done.jobId === jobId)).toHaveLength(1);
    // Events were published while it was offline, and came back through recovery.
    expect(beforeOnline).toBeLessThan(STEPS);
    expect(record.recoveries.some((recovery) => recovery.recovered && recovery.missed > 0)).toBe(true);
    expect(record.states).toContain("reconnecting");
    expect(record.states).not.toContain("unauthenticated");
    expect(record.states.at(-1)).toBe("connected");
    expect(await tab.loginFormShown()).toBe(false);
    expect(tab.requestCount("/api/auth/login")).toBe(1);
    expect(tab.pageErrors).toEqual([]);
  });

  it("hidden and frozen longer than ping interval + timeout: back connected, no login, no event missed", async () => {
    // Pages Chromium can really hide and freeze (see lifecycleContext); a socket of the tab's own, which freezes with it.
    const context = await chromium.lifecycleContext();
    const tab = await DemoPage.open(context, `${instance.url}/?share=tab`);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    const cdp = await context.newCDPSession(tab.page);
    const jobId = await tab.startJob(STEPS, STEP_INTERVAL_MS);
    await tab.waitForProgress(jobId, 3);
    await backgroundAndFreeze(tab, cdp);

    await tab.waitForJobDone(jobId);
    await tab.waitForState("connected");
    const record = await tab.record();
    // It really was hidden, then frozen (its timers stood still), then shown again.
    expect(record.visibility).toEqual(["hidden", "visible"]);
    expect(record.maxTimerGapMs).toBeGreaterThanOrEqual(2 * (PING_INTERVAL_MS + PING_TIMEOUT_MS));
    // The connection was lost and replaced, never by a login.
    expect(record.welcomes.length).toBeGreaterThanOrEqual(2);
    expect(record.states).toContain("reconnecting");
    expect(record.states).not.toContain("unauthenticated");
    expect(await tab.loginFormShown()).toBe(false);
    expect(tab.requestCount("/api/auth/login")).toBe(1);
    // Every job event exactly once, the missed ones replayed.
    expect(stepsOf(record, jobId)).toEqual(range(STEPS));
    expect(record.done.filter((done) => done.jobId === jobId)).toHaveLength(1);
    expect(record.recoveries.some((recovery) => recovery.recovered && recovery.missed > 0)).toBe(true);
    expect(tab.pageErrors).toEqual([]);
    await cdp.detach();
    await tab.close();
  });

  it("hidden and frozen, sharing the SharedWorker's socket: the socket stays up, and the tab gets every event once when it thaws", async () => {
    const context = await chromium.lifecycleContext();
    const tab = await DemoPage.open(context, instance.url);
    // The browser's one lifecycle context may still hold the previous test's login.
    await tab.page.waitForFunction(
      () =>
        document.getElementById("state")?.dataset.state === "connected" ||
        !document.getElementById("login-form")?.hidden,
      null,
      { polling: 50 },
    );
    if (await tab.loginFormShown()) await tab.login(API_KEY);
    await tab.waitForState("connected");
    const cdp = await context.newCDPSession(tab.page);
    const jobId = await tab.startJob(STEPS, STEP_INTERVAL_MS);
    await tab.waitForProgress(jobId, 3);
    await backgroundAndFreeze(tab, cdp);

    await tab.waitForJobDone(jobId);
    const record = await tab.record();
    expect(record.maxTimerGapMs).toBeGreaterThanOrEqual(2 * (PING_INTERVAL_MS + PING_TIMEOUT_MS));
    // The worker is not frozen with the page: its socket answered every ping meanwhile.
    expect(record.welcomes).toHaveLength(1);
    expect(record.states).not.toContain("reconnecting");
    expect(stepsOf(record, jobId)).toEqual(range(STEPS));
    expect(record.done.filter((done) => done.jobId === jobId)).toHaveLength(1);
    expect(tab.pageErrors).toEqual([]);
    await cdp.detach();
    await tab.close();
  });
});
