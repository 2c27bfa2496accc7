import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const metaOf = (html: string, name: string) => new RegExp(`<meta name="${name}" content="([^"]*)"`).exec(html)?.[1];

describe("the demo page tells the page how the server stores sessions", () => {
  let redis: TestRedis;
  let embedded: TestInstance;
  let shared: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    [embedded, shared] = await Promise.all([
      startInstance({}),
      startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: "demo-page-api-key-0123456789", TETHER_BASE_PATH: "/t" }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([embedded?.kill(), shared?.kill()]);
    await redis?.close();
  });

  it("embedded, with a generated key: both said in the page's head, under the CSP", async () => {
    const res = await fetch(`${embedded.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toMatch(/script-src 'self'(;|$)/);
    const html = await res.text();
    expect(metaOf(html, "tether-store")).toBe("embedded");
    expect(metaOf(html, "tether-api-key")).toBe("generated");
    // In the head, and no key or other secret with it.
    expect(html.indexOf('name="tether-store"')).toBeLessThan(html.indexOf("</head>"));
    expect((await fetch(`${embedded.url}/index.html`).then((r) => r.text())).includes('content="embedded"')).toBe(true);
  });

  it("on Redis with a given key, under a base path (which redirects to its slash)", async () => {
    const bare = await fetch(`${shared.url}/t?share=tab`, { redirect: "manual" });
    expect(bare.status).toBe(301);
    expect(bare.headers.get("location")).toBe("/t/?share=tab");
    const html = await (await fetch(`${shared.url}/t/`)).text();
    expect(metaOf(html, "tether-store")).toBe("redis");
    expect(metaOf(html, "tether-api-key")).toBe("configured");
    // The page's other files are served beside it, unchanged.
    const script = await fetch(`${shared.url}/t/messages.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/javascript/);
  });
});

describe("the client's SharedWorker script", () => {
  let instance: TestInstance;

  beforeAll(async () => {
    instance = await startInstance({ TETHER_BASE_PATH: "/t" });
  });
  afterAll(async () => {
    await instance?.kill();
  });

  it("is served beside the auth routes, under the base path, revalidated on every load", async () => {
    const res = await fetch(`${instance.url}/t/tether-worker.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("etag")).toBeTruthy();
    // The worker entry: it serves the tabs that connect to it.
    expect(await res.text()).toMatch(/onconnect/);
    expect((await fetch(`${instance.url}/tether-worker.js`)).status).toBe(404);
  });
});
