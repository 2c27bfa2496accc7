import { launchChromium, type TestBrowser } from "@tether/testkit/browser";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DemoPage, ensureDemoBundle, type StaticSite, startStaticSite } from "./helpers.js";

const API_KEY = "browser-security-api-key-0123456789";
/** 127.0.0.2 is loopback too, but another host: another origin and another site for Chromium. */
const ATTACKER_HOST = "127.0.0.2";

/** One HTTP exchange or WebSocket handshake as Chromium's network stack saw it (not as the page may read it). */
interface Exchange {
  url: string;
  method: string;
  /** The headers really sent (Origin included). */
  headers: Record<string, string>;
  status?: number;
  /** Why it failed, for the page: a CORS error, a WebSocket handshake error… */
  failure?: string;
}

/** Records, through CDP, what the page's requests really got: statuses the page itself cannot read. */
async function watchNetwork(context: BrowserContext, page: Page): Promise<{ cdp: CDPSession; seen: Exchange[] }> {
  const cdp = await context.newCDPSession(page);
  const byId = new Map<string, Exchange>();
  const seen: Exchange[] = [];
  const exchange = (requestId: string, url = "", method = "GET"): Exchange => {
    let found = byId.get(requestId);
    if (!found) {
      found = { url, method, headers: {} };
      byId.set(requestId, found);
      seen.push(found);
    }
    if (url !== "") found.url = url;
    return found;
  };
  cdp.on("Network.requestWillBeSent", ({ requestId, request }) => {
    const found = exchange(requestId, request.url, request.method);
    found.headers = { ...request.headers, ...found.headers };
  });
  cdp.on("Network.requestWillBeSentExtraInfo", ({ requestId, headers }) => {
    const found = exchange(requestId);
    found.headers = { ...found.headers, ...(headers as Record<string, string>) };
  });
  cdp.on("Network.responseReceivedExtraInfo", ({ requestId, statusCode }) => {
    exchange(requestId).status = statusCode;
  });
  cdp.on("Network.loadingFailed", ({ requestId, errorText, corsErrorStatus }) => {
    exchange(requestId).failure = corsErrorStatus ? `CORS ${corsErrorStatus.corsError}` : errorText;
  });
  cdp.on("Network.webSocketCreated", ({ requestId, url }) => {
    exchange(requestId, url, "GET");
  });
  cdp.on("Network.webSocketWillSendHandshakeRequest", ({ requestId, request }) => {
    const found = exchange(requestId);
    found.headers = { ...found.headers, ...(request.headers as Record<string, string>) };
  });
  cdp.on("Network.webSocketHandshakeResponseReceived", ({ requestId, response }) => {
    exchange(requestId).status = response.status;
  });
  cdp.on("Network.webSocketFrameError", ({ requestId, errorMessage }) => {
    exchange(requestId).failure = errorMessage;
  });
  await cdp.send("Network.enable");
  return { cdp, seen };
}

/** The named header, whatever its case. */
function header(exchange: Exchange, name: string): string | undefined {
  const key = Object.keys(exchange.headers).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : exchange.headers[key];
}

interface WebSocketProbe {
  opened: boolean;
  errored: boolean;
  closeCode: number;
  firstMessage: string | null;
}

/** Runs in a page: opens a raw WebSocket and reports what happened until it closed. */
const probeWebSocket = (url: string) =>
  new Promise<WebSocketProbe>((done) => {
    const result: WebSocketProbe = { opened: false, errored: false, closeCode: 0, firstMessage: null };
    const socket = new WebSocket(url);
    socket.onopen = () => {
      result.opened = true;
    };
    socket.onmessage = (event) => {
      result.firstMessage ??= String(event.data);
      socket.close();
    };
    socket.onerror = () => {
      result.errored = true;
    };
    socket.onclose = (event) => {
      result.closeCode = event.code;
      done(result);
    };
  });

/** Runs in a page: a credentialed fetch; what the page could read of the answer, if anything. */
const tryFetch = async ({ url, method }: { url: string; method: string }) => {
  try {
    const res = await fetch(url, { method, credentials: "include" });
    return { read: true, status: res.status, body: await res.text() };
  } catch (err) {
    return { read: false, status: 0, body: String(err) };
  }
};

describe("cross-site WebSocket hijacking, from a page on another site in the victim's browser", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let attackerSite: StaticSite;
  let chromium: TestBrowser;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    await ensureDemoBundle();
    [redis, chromium, attackerSite] = await Promise.all([
      startRedis(),
      launchChromium(),
      startStaticSite(ATTACKER_HOST, "<!doctype html><title>Totally harmless</title><p>Nothing to see here.</p>"),
    ]);
    // TETHER_ALLOWED_ORIGINS unset: same origin only.
    instance = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await attackerSite?.close();
    await instance?.kill();
    await redis?.close();
  });

  it("can neither read a WS token nor open the victim's socket, though the victim's cookie is in the browser", async () => {
    context = await chromium.newContext();
    const victim = await DemoPage.open(context, instance.url);
    await victim.login(API_KEY);
    await victim.waitForState("connected");
    const cookies = await context.cookies(instance.url);
    expect(cookies.map((cookie) => cookie.name)).toContain("tether.sid");

    const socketUrl = `ws://127.0.0.1:${instance.port}/socket.io/?EIO=4&transport=websocket`;
    const pollingUrl = `${instance.url}/socket.io/?EIO=4&transport=polling`;
    const tokenUrl = `${instance.url}/api/auth/ws-token`;

    // Control: from the victim's own origin the very same raw WebSocket opens (engine.io says hello).
    const own = await victim.page.evaluate(probeWebSocket, socketUrl);
    expect(own.opened).toBe(true);
    expect(own.firstMessage).toMatch(/^0\{"sid":/);

    const attacker = await context.newPage();
    const attackerErrors: string[] = [];
    attacker.on("pageerror", (err) => attackerErrors.push(err.message));
    await attacker.goto(attackerSite.url);
    const { cdp, seen } = await watchNetwork(context, attacker);
    const attackerOrigin = new URL(attackerSite.url).origin;

    // (a) The token route: the page cannot read a token, and the server refused by origin.
    const token = await attacker.evaluate(tryFetch, { url: tokenUrl, method: "POST" });
    expect(token.read).toBe(false);
    const tokenExchange = await waitFor("the attacker's token request", () =>
      seen.find((exchange) => exchange.url === tokenUrl && exchange.status !== undefined),
    );
    expect(header(tokenExchange, "origin")).toBe(attackerOrigin);
    expect(tokenExchange.status).toBe(403);
    // Defence in depth: the SameSite=Lax session cookie did not even travel with it.
    expect(header(tokenExchange, "cookie")).toBeUndefined();

    // (b) A raw WebSocket to the victim's server: refused at the handshake, never open.
    const hijack = await attacker.evaluate(probeWebSocket, socketUrl);
    expect(hijack).toEqual({ opened: false, errored: true, closeCode: 1006, firstMessage: null });
    const socketExchange = await waitFor("the attacker's WebSocket handshake", () =>
      seen.find((exchange) => exchange.url === socketUrl && exchange.failure !== undefined),
    );
    expect(header(socketExchange, "origin")).toBe(attackerOrigin);
    expect(socketExchange.failure).toMatch(/Unexpected response code: 4\d\d/);

    // (c) Socket.IO's other transport, as socket.io-client requests it cross-origin: refused too.
    const polling = await attacker.evaluate(tryFetch, { url: pollingUrl, method: "GET" });
    expect(polling.read).toBe(false);
    const pollingExchange = await waitFor("the attacker's polling handshake", () =>
      seen.find((exchange) => exchange.url === pollingUrl && exchange.status !== undefined),
    );
    expect(header(pollingExchange, "origin")).toBe(attackerOrigin);
    expect(pollingExchange.status).toBe(403);

    // The victim is still connected, still logged in.
    await victim.waitForState("connected");
    expect((await victim.record()).states).not.toContain("unauthenticated");
    expect(victim.pageErrors).toEqual([]);
    expect(attackerErrors).toEqual([]);
    await cdp.detach();
  });
});
