import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FAST_CLIENT } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import fetchCookie from "fetch-cookie";
import { CookieJar } from "tough-cookie";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionConfig } from "../src/config.js";
import { Credentials } from "../src/connection/credentials.js";
import type { FetchLike } from "../src/cookies.js";
import { UnauthorizedError } from "../src/errors.js";
import { ClientLog } from "../src/logger.js";
import { OffsetBook } from "../src/offset-book.js";
import { Hub, hubConnection } from "../src/sharing/hub.js";
import { SharedTabClient } from "../src/sharing/tab-client.js";
import { TabTokens } from "../src/sharing/tab-tokens.js";

const HOST = resolve(import.meta.dirname, "../../server/test/rooms/host.ts");
const API_KEY = "client-sharing-sub-api-key-012345";
const PUBLISH_KEY = "client-sharing-sub-publish-012345";

/**
 * A tab served by a hub, as in a SharedWorker (in this process, messages through
 * microtasks as through a port), against a real instance and Redis: the hub has no
 * token source of its own and asks the tab, whose token source is the app's; the
 * tab's subscription joins through the hub and gets its room's events.
 */
describe("a tab sharing a worker's connection", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  beforeAll(async () => {
    redis = await startRedis();
    const file = join(tmpdir(), `tether-client-sharing-sub-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ alice: ["doc:1"] }));
    instance = await startInstance(
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_PUBLISH_KEY: PUBLISH_KEY, ROOMS_POLICY: file },
      { main: HOST },
    );
  });
  afterAll(async () => {
    await instance?.kill();
    await redis?.close();
  });

  /** A tab whose token source is `getToken`, and the hub that asks it for tokens. */
  function origin(getToken: () => Promise<{ token: string }>) {
    const tabConfig = connectionConfig({ ...FAST_CLIENT, url: instance.url, getToken }, undefined);
    const tab = new SharedTabClient(tabConfig.http, new OffsetBook(), {
      retry: { baseMs: 20, maxMs: 400, random: Math.random },
      log: new ClientLog(undefined),
    });
    const credentials = new Credentials(tabConfig);
    tab.tokenSource = () => credentials.fetchToken();
    const tokens = new TabTokens(2_000);
    const hubConfig = connectionConfig(
      { ...FAST_CLIENT, url: instance.url, getToken: () => tokens.request() },
      undefined,
    );
    const hub = new Hub(
      hubConnection(hubConfig),
      { send: (message) => queueMicrotask(() => tab.receive(message)), watchTab: () => {} },
      tokens,
    );
    tab.attach({
      send: (message) => queueMicrotask(() => hub.receive(message)),
      mode: () => "worker",
      socket: () => undefined,
    });
    return { tab, hub };
  }

  it("the worker's tokens come from the tab's getToken; a subscription joins through it and gets its room's events", async () => {
    const jar = new CookieJar();
    const cookieFetch = fetchCookie(fetch, jar) as unknown as FetchLike;
    const login = await cookieFetch(`${instance.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKey: API_KEY, user: "alice" }),
    });
    expect(login.status).toBe(200);
    let asked = 0;
    const { tab, hub } = origin(async () => {
      asked += 1;
      const res = await cookieFetch(`${instance.url}/api/auth/ws-token`, { method: "POST" });
      return (await res.json()) as { token: string };
    });
    const doc = tab.subscribe("doc:1");
    const seen: number[] = [];
    doc.on("doc:edit", (payload: { n: number }) => seen.push(payload.n));
    tab.connect();
    await waitFor("subscribed through the hub", () => doc.state === "subscribed");
    expect(asked).toBe(1);
    const res = await post(
      `${instance.url}/api/publish`,
      { target: { room: "doc:1" }, event: "doc:edit", data: { n: 1 } },
      { authorization: `Bearer ${PUBLISH_KEY}` },
    );
    expect(res.status).toBe(202);
    await waitFor("the room's event in the tab", () => seen.length === 1);
    tab.disconnect();
    hub.client.disconnect();
  });

  it("the tab's getToken throwing UnauthorizedError stops the worker's connection: unauthenticated, no retries", async () => {
    let asked = 0;
    const { tab, hub } = origin(async () => {
      asked += 1;
      throw new UnauthorizedError("host session gone");
    });
    tab.connect();
    await waitFor("unauthenticated", () => tab.state === "unauthenticated" && hub.client.state === "unauthenticated");
    // Stopped, not waiting to retry: no retry is pending and the tab was asked once.
    expect(hub.client.stats().nextRetryAt).toBeUndefined();
    expect(asked).toBe(1);
  });
});
