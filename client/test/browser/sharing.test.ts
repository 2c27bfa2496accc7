import { launchChromium, type TestBrowser, WAIT_MS } from "@tether/testkit/browser";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ClientStats } from "../../src/stats.js";
import { DemoPage, ensureDemoBundle, range, stepsOf } from "./helpers.js";

const API_KEY = "browser-sharing-api-key-0123456789";
const TABS = 10;
const STEPS = 30;
const STEP_INTERVAL_MS = 100;
const RELOAD_STEP_INTERVAL_MS = 30;

/** A value of the instance's Prometheus metrics (0 when the series is absent). */
async function metric(instance: TestInstance, series: string): Promise<number> {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Reconnects the server timed (`auth.awayMs`) that presented the resume ticket, as every reconnect here does. */
const RECONNECT_TIMES = 'tether_reconnect_duration_seconds_count{credential="ticket"}';

const sockets = (instance: TestInstance) => metric(instance, "tether_connected_sockets");
const tokensIssued = (instance: TestInstance) => metric(instance, 'tether_ws_tokens_total{result="issued"}');

function stats(tab: DemoPage): Promise<ClientStats> {
  return tab.page.evaluate(() =>
    (globalThis as unknown as { tetherClient: { stats(): ClientStats } }).tetherClient.stats(),
  );
}

/** Each step of the job once and in order, in every tab. */
async function expectEveryStepOnce(tabs: DemoPage[], jobId: string): Promise<void> {
  for (const tab of tabs) await tab.waitForJobDone(jobId);
  for (const tab of tabs) {
    const record = await tab.record();
    expect(stepsOf(record, jobId)).toEqual(range(STEPS));
    expect(record.done.filter((done) => done.jobId === jobId)).toHaveLength(1);
  }
}

/**
 * Run in a page: a client of the app's own with `getToken`, as your-own-login.md has it
 * (the host's own route behind its own session; here, Tether's token route and cookie),
 * and `sharedWorkerUrl`. A string, so that no transform of the test's own reaches the page.
 */
const APP_CLIENT_WITH_GET_TOKEN = `(async () => {
  const { createTetherClient } = await import("/tether.js");
  globalThis.tokenCalls = 0;
  globalThis.done = [];
  const client = createTetherClient({
    sharedWorkerUrl: "/tether-worker.js",
    getToken: async () => {
      globalThis.tokenCalls += 1;
      const res = await fetch("/api/auth/ws-token", { method: "POST", credentials: "same-origin" });
      if (!res.ok) throw Object.assign(new Error("token route: " + res.status), { status: res.status });
      return res.json();
    },
  });
  client.on("job:done", ({ jobId }) => globalThis.done.push(jobId));
  globalThis.appClient = client;
  client.connect();
})()`;

/**
 * Run in a page: a client of the app's own with `tokenUrl` (here Tether's own token route,
 * under a query string of its own so that its requests can be told apart) and
 * `sharedWorkerUrl`, made and connected in one expression.
 */
const APP_CLIENT_WITH_TOKEN_URL = `(async () => {
  const { createTetherClient } = await import("/tether.js");
  globalThis.done = [];
  globalThis.appClient = createTetherClient({
    sharedWorkerUrl: "/tether-worker.js",
    tokenUrl: "/api/auth/ws-token?via=token-url",
  }).connect();
  globalThis.appClient.on("job:done", ({ jobId }) => globalThis.done.push(jobId));
})()`;

describe("one socket per browser: tabs share the connection", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let proxy: TestProxy;
  let chromium: TestBrowser;

  /** `count` tabs of one browser profile on `path`, logged in through the first, all connected. */
  async function openTabs(context: BrowserContext, count: number, path = "/"): Promise<DemoPage[]> {
    const first = await DemoPage.open(context, `${proxy.url}${path}`);
    await first.login(API_KEY);
    await first.waitForState("connected");
    const others = await Promise.all(
      Array.from({ length: count - 1 }, () => DemoPage.open(context, `${proxy.url}${path}`)),
    );
    const tabs = [first, ...others];
    for (const tab of tabs) await tab.waitForState("connected");
    return tabs;
  }

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium({ lifecycle: true })]);
    instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_WS_TOKEN_TTL: "1s",
      // Long enough that only the client's own checks can find a dead socket within a test.
      TETHER_PING_INTERVAL: "20s",
      TETHER_PING_TIMEOUT: "20s",
    });
    proxy = await startProxy([instance.port]);
  });

  // Each test's browser profiles close with it, pass or fail: no socket outlives its test.
  afterEach(async () => {
    await chromium.closeContexts();
  });

  afterAll(async () => {
    await chromium?.close();
    await proxy?.close();
    await instance?.kill();
    await redis?.close();
  });

  it("ten tabs, one SharedWorker socket: every tab gets every step once, and a reconnect needs no token request", async () => {
    const context = await chromium.newContext();
    const tabs = await openTabs(context, TABS);
    await waitFor("one socket for ten tabs", async () => (await sockets(instance)) === 1);
    expect(await stats(tabs[0] as DemoPage)).toMatchObject({ mode: "worker", tabs: TABS });

    const jobId = await (tabs[3] as DemoPage).startJob(STEPS, STEP_INTERVAL_MS);
    await expectEveryStepOnce(tabs, jobId);

    // Every tab's connection drops at once (the shared one): one reconnect, with the resume ticket.
    const issued = await tokensIssued(instance);
    const tickets = await metric(instance, 'tether_ws_tokens_total{result="ticket"}');
    proxy.cut();
    for (const tab of tabs) await tab.waitForState("connected");
    await waitFor("the shared socket back", async () => (await sockets(instance)) === 1);
    expect(await tokensIssued(instance)).toBe(issued);
    expect(await metric(instance, 'tether_ws_tokens_total{result="ticket"}')).toBe(tickets + 1);
    for (const tab of tabs) {
      expect(tab.requestCount("/api/auth/login")).toBe(tab === tabs[0] ? 1 : 0);
      expect(tab.pageErrors).toEqual([]);
    }
  });

  it("leader tab closed mid-job: the next tab takes over, every tab gets every step once, no login", async () => {
    const context = await chromium.newContext();
    const [leader, ...followers] = await openTabs(context, 3, "/?share=leader");
    if (!leader) throw new Error("no tabs");
    await waitFor("one socket for three tabs", async () => (await sockets(instance)) === 1);
    expect((await stats(leader)).mode).toBe("leader");
    for (const tab of followers) expect((await stats(tab)).mode).toBe("follower");

    const jobId = await leader.startJob(STEPS, STEP_INTERVAL_MS);
    await leader.waitForProgress(jobId, 5);
    const issued = await tokensIssued(instance);
    await leader.close();

    await expectEveryStepOnce(followers, jobId);
    const modes = await Promise.all(followers.map(async (tab) => (await stats(tab)).mode));
    expect(modes.sort()).toEqual(["follower", "leader"]);
    await waitFor("one socket for the two tabs left", async () => (await sockets(instance)) === 1);
    // The new leader reconnected with the resume ticket the old one's socket was pushed.
    expect(await tokensIssued(instance)).toBe(issued);
    for (const tab of followers) {
      expect(tab.requestCount("/api/auth/login")).toBe(0);
      expect((await tab.record()).states).not.toContain("unauthenticated");
      expect(tab.pageErrors).toEqual([]);
    }
  });

  it("with the app's own getToken the SharedWorker still holds the socket: it asks a tab for each token", async () => {
    const context = await chromium.newContext();
    // The demo's own client has a socket of its own here (?share=tab): the worker serves only the app's clients.
    const first = await DemoPage.open(context, `${proxy.url}/?share=tab`);
    await first.login(API_KEY);
    await first.waitForState("connected");
    const second = await DemoPage.open(context, `${proxy.url}/?share=tab`);
    await second.waitForState("connected");
    const tabs = [first, second];
    for (const tab of tabs) await tab.page.evaluate(APP_CLIENT_WITH_GET_TOKEN);
    const appStats = (tab: DemoPage) =>
      tab.page.evaluate(() => {
        const client = (globalThis as unknown as { appClient: { state: string; stats(): ClientStats } }).appClient;
        return { state: client.state, ...client.stats() };
      });
    for (const tab of tabs)
      await waitFor("the app's client connected through the worker", async () => {
        const now = await appStats(tab);
        return now.state === "connected" && now.tabs === 2;
      });
    for (const tab of tabs) expect((await appStats(tab)).mode).toBe("worker");
    const calls = await Promise.all(
      tabs.map((tab) => tab.page.evaluate(() => (globalThis as unknown as { tokenCalls: number }).tokenCalls)),
    );
    expect(calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    // Two demo sockets and the worker's one.
    await waitFor("three sockets", async () => (await sockets(instance)) === 3);

    const jobId = await first.startJob(3, 10);
    for (const tab of tabs)
      await tab.page.waitForFunction((id) => (globalThis as unknown as { done: string[] }).done.includes(id), jobId, {
        timeout: WAIT_MS,
        polling: 50,
      });
    for (const tab of tabs) expect(tab.pageErrors).toEqual([]);
  });

  it("with the app's tokenUrl the SharedWorker holds the socket and fetches its tokens itself: no tab is asked", async () => {
    const context = await chromium.newContext();
    const first = await DemoPage.open(context, `${proxy.url}/?share=tab`);
    await first.login(API_KEY);
    await first.waitForState("connected");
    const second = await DemoPage.open(context, `${proxy.url}/?share=tab`);
    await second.waitForState("connected");
    const tabs = [first, second];
    const fromTabs: string[] = [];
    for (const tab of tabs)
      tab.page.on("request", (req) => req.url().includes("via=token-url") && fromTabs.push(req.url()));
    const issued = await tokensIssued(instance);
    for (const tab of tabs) await tab.page.evaluate(APP_CLIENT_WITH_TOKEN_URL);
    const appStats = (tab: DemoPage) =>
      tab.page.evaluate(() => {
        const client = (globalThis as unknown as { appClient: { state: string; stats(): ClientStats } }).appClient;
        return { state: client.state, ...client.stats() };
      });
    for (const tab of tabs)
      await waitFor("the app's client connected through the worker", async () => {
        const now = await appStats(tab);
        return now.state === "connected" && now.tabs === 2;
      });
    for (const tab of tabs) expect((await appStats(tab)).mode).toBe("worker");
    // Two demo sockets and the worker's one, whose token the worker fetched from the tokenUrl itself.
    await waitFor("three sockets", async () => (await sockets(instance)) === 3);
    expect(await tokensIssued(instance)).toBeGreaterThan(issued);
    expect(fromTabs).toEqual([]);

    const jobId = await first.startJob(3, 10);
    for (const tab of tabs)
      await tab.page.waitForFunction((id) => (globalThis as unknown as { done: string[] }).done.includes(id), jobId, {
        timeout: WAIT_MS,
        polling: 50,
      });
    for (const tab of tabs) expect(tab.pageErrors).toEqual([]);
  });

  for (const [mode, path] of [
    ["worker", "/"],
    ["leader", "/?share=leader"],
    ["tab", "/?share=tab"],
  ] as const) {
    it(`reload mid-job (${mode} mode): the steps published during the reload arrive after it, none twice`, async () => {
      const context = await chromium.newContext();
      // Shared modes: a second tab on the same socket sees the replay for the reloaded one, and must skip it.
      const [tab, witness] = await openTabs(context, mode === "tab" ? 1 : 2, path);
      if (!tab) throw new Error("no tab");
      // What the page delivered before it went away, kept across the reload.
      await tab.page.evaluate(() => {
        addEventListener("pagehide", () => {
          const record = (globalThis as unknown as { tetherRecord: { progress: unknown[] } }).tetherRecord;
          sessionStorage.setItem("test:before-reload", JSON.stringify(record.progress));
        });
      });
      // Steps faster than a reload: some are published while the page is gone.
      const jobId = await tab.startJob(STEPS, RELOAD_STEP_INTERVAL_MS);
      await tab.waitForProgress(jobId, 5);
      await tab.page.reload();

      await tab.waitForJobDone(jobId);
      const before = (await tab.page.evaluate(() =>
        JSON.parse(sessionStorage.getItem("test:before-reload") ?? "[]"),
      )) as {
        jobId: string;
        step: number;
      }[];
      const after = stepsOf(await tab.record(), jobId);
      const seen = [...before.filter((event) => event.jobId === jobId).map((event) => event.step), ...after];
      expect(seen).toEqual(range(STEPS));
      // Its own socket is new after the reload: the missed steps came by recovery. (A shared socket
      // replays only when the hub is ahead of what the tab stored, which depends on timing.)
      if (mode === "tab") expect((await tab.record()).recoveries.some((recovery) => recovery.recovered)).toBe(true);
      expect(tab.requestCount("/api/auth/login")).toBe(1);
      if (witness) await expectEveryStepOnce([witness], jobId);
    });
  }

  describe("a wake-up checks a socket that looks open but is dead", () => {
    const triggers = {
      online: async (tab: DemoPage) => tab.page.evaluate(() => dispatchEvent(new Event("online"))),
      pageshow: async (tab: DemoPage) =>
        tab.page.evaluate(() => dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }))),
    };
    for (const [trigger, fire] of Object.entries(triggers)) {
      it(`${trigger} alone: the dead socket is replaced within the check's deadline`, async () => {
        const context = await chromium.newContext();
        const [tab] = await openTabs(context, 1);
        if (!tab) throw new Error("no tab");
        await expectRevivedBy(tab, () => fire(tab));
      });
    }

    it("visible again alone (a window restored): the dead socket is replaced within the check's deadline", async () => {
      // A page Chromium really hides when its window is minimized (see lifecycleContext).
      const context = await chromium.lifecycleContext();
      const [tab] = await openTabs(context, 1);
      if (!tab) throw new Error("no tab");
      try {
        const cdp = await context.newCDPSession(tab.page);
        const { windowId } = await cdp.send("Browser.getWindowForTarget");
        await cdp.send("Browser.setWindowBounds", { windowId, bounds: { windowState: "minimized" } });
        await tab.page.waitForFunction(() => document.visibilityState === "hidden", null, { polling: 50 });
        await expectRevivedBy(tab, async () => {
          await cdp.send("Browser.setWindowBounds", { windowId, bounds: { windowState: "normal" } });
        });
        expect((await tab.record()).visibility).toEqual(["hidden", "visible"]);
        await cdp.detach();
      } finally {
        await tab.close();
      }
    });

    /** Kills the tab's socket silently, then `wake` must get it replaced well before the server would notice. */
    async function expectRevivedBy(tab: DemoPage, wake: () => Promise<unknown>): Promise<void> {
      const before = await stats(tab);
      const timed = await metric(instance, RECONNECT_TIMES);
      expect(proxy.blackholeWebSockets()).toBe(1);
      // Nothing notices on its own: the server's pings are 20 s apart.
      expect(await tab.state()).toBe("connected");
      const fired = Date.now();
      await wake();
      await waitFor(
        "a new connection",
        async () => (await stats(tab)).connects > before.connects && (await tab.state()) === "connected",
        { timeoutMs: WAIT_MS },
      );
      // The check's deadline (3 s) and a reconnect, well inside the server's 40 s to notice.
      expect(Date.now() - fired).toBeLessThan(8_000);
      const after = await stats(tab);
      expect(after.reconnectTimesMs.length).toBe(before.reconnectTimesMs.length + 1);
      // How long it was away reached the server's histogram, through the shared socket's handshake.
      await waitFor(
        "the reconnect in the server's histogram",
        async () => (await metric(instance, RECONNECT_TIMES)) === timed + 1,
      );
      expect(tab.pageErrors).toEqual([]);
    }
  });
});
