import { launchChromium, type TestBrowser } from "@tether/testkit/browser";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoPage, ensureDemoBundle, range, stepsOf } from "./helpers.js";

const API_KEY = "browser-failover-api-key-0123456789";
const A = `browser-a-${process.pid}`;
const B = `browser-b-${process.pid}`;

describe("a tab behind a load balancer whose instance is killed", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  let proxy: TestProxy;
  let chromium: TestBrowser;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium] = await Promise.all([startRedis(), launchChromium()]);
    const env = {
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_WS_TOKEN_TTL: "1s",
      TETHER_PING_INTERVAL: "500ms",
      TETHER_PING_TIMEOUT: "500ms",
    };
    [a, b] = await Promise.all([
      startInstance({ ...env, TETHER_INSTANCE_ID: A }),
      startInstance({ ...env, TETHER_INSTANCE_ID: B }),
    ]);
    proxy = await startProxy([a.port, b.port]);
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await proxy?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("kill -9 of its instance: it reconnects to the other one, with no login", async () => {
    context = await chromium.newContext();
    // The page's origin is the balancer's: every request and the socket go through it.
    const tab = await DemoPage.open(context, proxy.url);
    await tab.login(API_KEY);
    await tab.waitForState("connected");
    const first = (await tab.waitForWelcome(1)).instance;
    expect([A, B]).toContain(first);
    await tab.waitForInstance(first);
    const [victim, survivor] = first === A ? [a, B] : [b, A];
    const welcomesBefore = (await tab.record()).welcomes.length;

    await victim.kill();
    await tab.waitForInstance(survivor);
    await tab.waitForState("connected");

    const record = await tab.record();
    // Every connection since the kill is to the survivor.
    const since = record.welcomes.slice(welcomesBefore).map((welcome) => welcome.instance);
    expect(since.length).toBeGreaterThan(0);
    expect(new Set(since)).toEqual(new Set([survivor]));
    expect(record.states).toContain("reconnecting");
    expect(record.states).not.toContain("unauthenticated");
    expect(await tab.loginFormShown()).toBe(false);
    expect(tab.requestCount("/api/auth/login")).toBe(1);

    // The new connection carries the user's events.
    const jobId = await tab.startJob(5, 20);
    await tab.waitForJobDone(jobId);
    expect(stepsOf(await tab.record(), jobId)).toEqual(range(5));
    expect(tab.pageErrors).toEqual([]);
  });
});
