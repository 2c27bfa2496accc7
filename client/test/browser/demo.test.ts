import { launchChromium, type TestBrowser } from "@tether/testkit/browser";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoPage, ensureDemoBundle, range, stepsOf } from "./helpers.js";

const API_KEY = "browser-demo-api-key-0123456789";
const INSTANCE = `browser-demo-${process.pid}`;

describe("the demo page in Chromium", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let chromium: TestBrowser;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium()]);
    instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_WS_TOKEN_TTL: "1s",
      TETHER_PING_INTERVAL: "500ms",
      TETHER_PING_TIMEOUT: "500ms",
      TETHER_INSTANCE_ID: INSTANCE,
    });
  });

  afterAll(async () => {
    await chromium?.close();
    await instance?.kill();
    await redis?.close();
  });

  it("logs in with the typed key, streams a job past the token TTL, and a reload stays logged in", async () => {
    const tab = await DemoPage.open(await chromium.newContext(), instance.url);
    // Not logged in: the page's session check shows the form.
    await tab.waitForLoginForm();

    // A wrong key: the form says so, and nothing connects.
    await tab.login("not-the-api-key-0123456789");
    await tab.waitForText("login-error", "Wrong API key.");
    expect(await tab.state()).toBe("closed");

    await tab.login(API_KEY);
    await tab.waitForState("connected");
    await tab.waitForInstance(INSTANCE);
    expect(await tab.loginFormShown()).toBe(false);
    // The first connect was signed in by the session cookie the browser sent with it: no token request.
    const metrics = await (await fetch(`${instance.url}/metrics`)).text();
    expect(metrics).toMatch(/^tether_ws_tokens_total\{result="cookie"\} 1$/m);
    expect(metrics).not.toMatch(/^tether_ws_tokens_total\{result="issued"\} [1-9]/m);

    // The demo's own button: 20 steps 200 ms apart, four times the 1 s token TTL.
    await tab.page.click("#run-job");
    await tab.waitForText("progress", "20/20 done");
    const record = await tab.record();
    expect(record.done).toHaveLength(1);
    const jobId = record.done[0]?.jobId ?? "";
    expect(stepsOf(record, jobId)).toEqual(range(20));
    expect(record.states).not.toContain("unauthenticated");
    expect(tab.requestCount("/api/auth/login")).toBe(2);

    // A reload: the session cookie is all it takes, no key typed.
    await tab.page.reload();
    await tab.waitForState("connected");
    await tab.waitForInstance(INSTANCE);
    expect(await tab.loginFormShown()).toBe(false);
    expect(await tab.page.inputValue("#api-key")).toBe("");
    expect(tab.requestCount("/api/auth/login")).toBe(2);
    const again = await tab.startJob(3, 20);
    await tab.waitForJobDone(again);
    const reloaded = await tab.record();
    expect(stepsOf(reloaded, again)).toEqual(range(3));
    expect(reloaded.states).not.toContain("unauthenticated");
    expect(tab.pageErrors).toEqual([]);
  });

  it("a logout in another tab ends this tab's connection: the login form, and no more attempts", async () => {
    const context = await chromium.newContext();
    const first = await DemoPage.open(context, instance.url);
    await first.login(API_KEY);
    await first.waitForState("connected");
    const second = await DemoPage.open(context, instance.url);
    await second.waitForState("connected");
    expect(second.requestCount("/api/auth/login")).toBe(0);

    await second.page.click("#logout");
    await second.waitForState("closed");
    await second.waitForLoginForm();

    await first.waitForState("unauthenticated");
    await first.waitForLoginForm();
    const ended = await first.record();
    expect(ended.ended).toEqual([{ reason: "logout" }]);

    // No reconnect loop: several of the client's retry delays pass (the scenario is that
    // time passes), and the tab neither asks for a token nor opens a socket.
    const tokenRequests = first.requestCount("/api/auth/ws-token");
    const webSockets = first.webSockets;
    await idleFor(2_000);
    expect(first.requestCount("/api/auth/ws-token")).toBe(tokenRequests);
    expect(first.webSockets).toBe(webSockets);
    expect((await first.record()).states).toEqual(ended.states);
    expect(await first.state()).toBe("unauthenticated");

    // The form works: a new login connects again.
    await first.login(API_KEY);
    await first.waitForState("connected");
    expect(first.pageErrors).toEqual([]);
    expect(second.pageErrors).toEqual([]);
  });
});
